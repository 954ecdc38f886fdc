-- Disputes in the payout ledger (issue 18 item 3). While a dispute of a booking's payment is open,
-- the booking's entries are held back from runs; a lost dispute appends a `dispute` entry (-the
-- disputed amount) to the host's ledger, payable at once and carried like any negative balance; a
-- won one releases the held entries to the next run. A dispute is kept once per provider dispute id,
-- whichever report of it arrives first; its debit waits, like a refund, for the booking's
-- confirmation when the streams deliver the loss first.
CREATE TABLE payout.disputes (
    provider text NOT NULL,
    dispute_ref text NOT NULL,
    booking_id uuid NOT NULL,
    -- The event that reported the loss: the source of the `dispute` entry.
    closed_event_id uuid,
    currency char(3) NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    status text NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    opened_at timestamptz NOT NULL,
    closed_at timestamptz,
    -- Whether a lost dispute's debit is in the ledger.
    entered boolean NOT NULL DEFAULT false,
    PRIMARY KEY (provider, dispute_ref),
    CHECK ((status = 'open') = (closed_at IS NULL)),
    CHECK ((status = 'lost') = (closed_event_id IS NOT NULL)),
    CHECK (NOT entered OR status = 'lost')
);
-- What runs hold back, and the losses waiting for their booking.
CREATE INDEX disputes_open ON payout.disputes (booking_id) WHERE status = 'open';
CREATE INDEX disputes_waiting ON payout.disputes (booking_id) WHERE status = 'lost' AND NOT entered;

-- The ledger's new kind: a lost dispute's debit.
DO $$
DECLARE constraint_name text;
BEGIN
    FOR constraint_name IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'payout.entries'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%''fee_reversal''::text%'
          AND pg_get_constraintdef(oid) NOT LIKE '%CASE%'
    LOOP
        EXECUTE format('ALTER TABLE payout.entries DROP CONSTRAINT %I', constraint_name);
    END LOOP;
    FOR constraint_name IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'payout.run_lines'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%net =%'
    LOOP
        EXECUTE format('ALTER TABLE payout.run_lines DROP CONSTRAINT %I', constraint_name);
    END LOOP;
END $$;
ALTER TABLE payout.entries
    ADD CONSTRAINT entries_kind_check CHECK (kind IN ('revenue', 'fee', 'refund', 'fee_reversal', 'dispute'));

-- The report and the payouts sum the debits of lost disputes apart.
ALTER TABLE payout.run_lines
    ADD COLUMN disputes bigint NOT NULL DEFAULT 0 CHECK (disputes >= 0),
    ADD CONSTRAINT run_lines_net_check CHECK (net = gross - fees - refunds + fee_reversals - disputes + carried_in);
ALTER TABLE payout.payouts ADD COLUMN item_disputes bigint NOT NULL DEFAULT 0;
