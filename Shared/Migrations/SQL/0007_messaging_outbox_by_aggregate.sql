-- Finding the events of one aggregate on one stream (the booking saga's deadline poller looks for a
-- booking's payment events that its consumer never applied, e.g. after Redis lost stream entries).
CREATE INDEX outbox_by_stream_aggregate ON messaging.outbox (stream, aggregate_id, position);
