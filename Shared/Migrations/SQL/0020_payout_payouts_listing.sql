-- Payouts across hosts (GET /v1/payouts): newest first, all of them or those in one status (an
-- operator's list of failed payouts). A payout run writes one payout per host and currency, so these
-- indexes cost a run two index entries per payout. Built in the migration's transaction, which holds
-- writes to payout.payouts while it scans the table once (only runs and transfers write to it).
CREATE INDEX payouts_newest_first ON payout.payouts (created_at DESC, id DESC);
CREATE INDEX payouts_by_status ON payout.payouts (status, created_at DESC, id DESC);
