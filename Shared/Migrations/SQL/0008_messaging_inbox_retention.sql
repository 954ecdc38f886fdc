-- Inbox rows are deleted after INBOX_RETENTION (by processed_at, per consumer).
CREATE INDEX inbox_by_processed_at ON messaging.inbox (consumer, processed_at);
