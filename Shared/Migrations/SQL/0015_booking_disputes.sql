-- Disputes (issue 18 item 3): a customer disputed a booking's payment with their bank. The booking
-- service keeps each dispute once per provider dispute id, whichever of the provider's reports of it
-- arrives first (`payment.disputed` opens it, `payment.dispute_closed` closes it, also when it comes
-- first), and shows the newest on the booking. `booking_id` is null when the platform knows no
-- booking for the disputed payment.
CREATE TABLE booking.disputes (
    provider text NOT NULL,
    dispute_ref text NOT NULL,
    booking_id uuid,
    provider_ref text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency char(3) NOT NULL,
    reason text,
    status text NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    provider_status text NOT NULL,
    opened_at timestamptz NOT NULL,
    closed_at timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (provider, dispute_ref),
    CHECK ((status = 'open') = (closed_at IS NULL))
);
CREATE INDEX disputes_by_booking ON booking.disputes (booking_id, opened_at DESC) WHERE booking_id IS NOT NULL;
