-- The items of failed payouts (released, their entries open again), by entry. A run's reconciliation
-- asks whether an entry it pays is in another payout that did not fail; a live item cannot be (the
-- unique index payout_items_entry_once), so only released items can, and this index finds them without
-- reading every item ever written: the check's cost follows the released items, a small share, instead
-- of the whole history (docs/performance.md, "Payout: the entries in two payouts").
-- Built in the migration's transaction, which blocks writes to payout_items while it scans the table
-- once; they happen only while a payout run computes or a transfer fails.
CREATE INDEX payout_items_released_entries ON payout.payout_items (entry_id) WHERE released;
