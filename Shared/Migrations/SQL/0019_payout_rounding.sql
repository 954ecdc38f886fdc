-- Payouts rounded down to the provider's smallest transfer. The provider moves BHD, JOD, KWD, OMR and
-- TND only in steps of 10 (the last of three decimals 0) and MGA in whole ariary (steps of 100 ISO
-- minor units). A balance of 1.005 KWD cannot be transferred; paying it whole failed the payout
-- every night until the balance happened to end in 0. A run now pays the balance rounded down to the
-- step and carries the rest to the next run, through two ledger entries of the same amount and
-- source (the payout):
--   rounding          (-the rest) one of the payout's items, so a payout is still the sum of its items;
--   rounding_carried  (+the rest) open, paid by a later run (in its carried_in).
-- They belong to no booking. The new checks read payout.entries once, inside the migration's
-- transaction; writers of the ledger wait until it commits.
DO $$
DECLARE constraint_name text;
BEGIN
    -- The sign rule (a CASE over the kinds) is restated with the new kinds.
    FOR constraint_name IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'payout.entries'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%CASE%'
    LOOP
        EXECUTE format('ALTER TABLE payout.entries DROP CONSTRAINT %I', constraint_name);
    END LOOP;
END $$;
ALTER TABLE payout.entries
    DROP CONSTRAINT entries_kind_check,
    ALTER COLUMN booking_id DROP NOT NULL,
    ADD CONSTRAINT entries_kind_check
        CHECK (kind IN ('revenue', 'fee', 'refund', 'fee_reversal', 'dispute', 'rounding', 'rounding_carried')),
    ADD CONSTRAINT entries_amount_sign_check
        CHECK (CASE kind WHEN 'revenue' THEN amount > 0 WHEN 'fee_reversal' THEN amount > 0 WHEN 'rounding_carried' THEN amount > 0
               ELSE amount < 0 END),
    ADD CONSTRAINT entries_booking_check CHECK ((booking_id IS NULL) = (kind IN ('rounding', 'rounding_carried')));

-- The report shows the rest held back (non-negative) apart; net is what the line's payout pays.
ALTER TABLE payout.run_lines
    DROP CONSTRAINT run_lines_net_check,
    ADD COLUMN rounding bigint NOT NULL DEFAULT 0 CHECK (rounding >= 0),
    ADD CONSTRAINT run_lines_net_check CHECK (net = gross - fees - refunds + fee_reversals - disputes + carried_in - rounding);
-- A payout's rounding items summed (signed: a carried rest it pays, less the rest it holds back).
ALTER TABLE payout.payouts ADD COLUMN item_rounding bigint NOT NULL DEFAULT 0;
