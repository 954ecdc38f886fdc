-- Event cancellation (issue 18 item 1): a host or an operator cancels a whole event. The event row
-- records it; booking's EventCancellationWorker then cancels the event's bookings in bounded batches
-- (one transaction each, with their outbox events) until none awaits payment or stands confirmed,
-- and sets `cancellation_completed_at`.
ALTER TABLE booking.events
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN cancel_reason text CHECK (char_length(cancel_reason) BETWEEN 1 AND 500),
    -- `X-Operator` of the request, else `admin`.
    ADD COLUMN cancelled_by text,
    -- Bookings awaiting payment or confirmed when the cancellation committed: the work to do.
    ADD COLUMN cancellation_bookings integer CHECK (cancellation_bookings >= 0),
    ADD COLUMN cancellation_completed_at timestamptz,
    ADD CONSTRAINT events_cancellation_complete CHECK (
        (cancelled_at IS NULL) = (cancel_reason IS NULL)
        AND (cancelled_at IS NULL) = (cancellation_bookings IS NULL)
        AND (cancellation_completed_at IS NULL OR cancelled_at IS NOT NULL));

-- The worker's queue: cancellations not finished yet.
CREATE INDEX events_cancellation_open ON booking.events (cancelled_at)
    WHERE cancelled_at IS NOT NULL AND cancellation_completed_at IS NULL;

-- An event's bookings, for the worker's batches and the cancellation's progress.
CREATE INDEX bookings_by_event ON booking.bookings (event_id, booking_id);

-- No booking of a cancelled event, whatever the application checked before: the insert locks the
-- event row (FOR KEY SHARE, the lock the foreign key takes anyway) and reads its latest version. The
-- cancellation locks the row FOR UPDATE before it marks it, so it waits for bookings being inserted
-- and every booking inserted after it sees the mark. The booking service maps this error
-- (check_violation, constraint `event_not_cancelled`) to 409 `event_cancelled`.
CREATE FUNCTION booking.refuse_bookings_of_cancelled_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cancelled timestamptz;
BEGIN
    SELECT e.cancelled_at INTO cancelled FROM booking.events e WHERE e.event_id = NEW.event_id FOR KEY SHARE;
    IF cancelled IS NOT NULL THEN
        RAISE EXCEPTION 'event % is cancelled', NEW.event_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'event_not_cancelled', TABLE = 'bookings', SCHEMA = 'booking';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER bookings_refused_for_cancelled_events
    BEFORE INSERT ON booking.bookings
    FOR EACH ROW EXECUTE FUNCTION booking.refuse_bookings_of_cancelled_events();
