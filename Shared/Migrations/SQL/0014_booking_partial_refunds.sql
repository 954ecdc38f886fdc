-- Partial refunds (issue 18 item 2): an operator refunds part of a confirmed booking's payment
-- (`POST /v1/bookings/{id}/refunds`); the booking stays confirmed. Such a request is purpose
-- `partial`, with the operator's note. A booking's partial requests not failed never add up to more
-- than its amount: the route locks the booking's saga row before it sums them.
ALTER TABLE booking.refund_requests DROP CONSTRAINT refund_requests_purpose_check;
ALTER TABLE booking.refund_requests
    ADD CONSTRAINT refund_requests_purpose_check CHECK (purpose IN ('cancellation', 'compensation', 'partial')),
    ADD COLUMN note text CHECK (char_length(note) <= 500);
