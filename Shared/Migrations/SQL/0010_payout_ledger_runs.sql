-- Payouts to hosts (DESIGN.md, Payout): the hosts' payout accounts, the ledger fed by events, the
-- nightly runs with their report lines, and the payouts with the entries they cover.

-- A host's payout account and, optionally, its own fee (else PLATFORM_FEE_BPS).
CREATE TABLE payout.hosts (
    host_id text PRIMARY KEY,
    payout_account text NOT NULL CHECK (payout_account ~ '^acct_[A-Za-z0-9]{1,255}$'),
    fee_bps integer CHECK (fee_bps BETWEEN 0 AND 10000),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- What the ledger knows of each confirmed booking: the amount and fee its refunds are measured
-- against, and the running total refunded (the fee reversals are cumulative, so parts never
-- reverse more than the fee).
CREATE TABLE payout.bookings (
    booking_id uuid PRIMARY KEY,
    host_id text NOT NULL,
    currency char(3) NOT NULL,
    amount bigint NOT NULL CHECK (amount >= 0),
    fee bigint NOT NULL CHECK (fee >= 0 AND fee <= amount),
    fee_bps integer NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    refunded bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    fee_reversed bigint NOT NULL DEFAULT 0 CHECK (fee_reversed >= 0 AND fee_reversed <= fee),
    event_ends_at timestamptz NOT NULL,
    confirmed_at timestamptz NOT NULL
);

-- Refunds of a booking, kept whatever order the streams deliver them in: a refund that arrives
-- before its booking's confirmation is entered when the confirmation comes.
CREATE TABLE payout.refunds (
    event_id uuid PRIMARY KEY,
    booking_id uuid NOT NULL,
    currency char(3) NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    occurred_at timestamptz NOT NULL,
    entered boolean NOT NULL DEFAULT false
);
CREATE INDEX refunds_waiting ON payout.refunds (booking_id) WHERE NOT entered;

-- The ledger: append-only, signed amounts in minor units (revenue and fee reversals credit the
-- host, fees and refunds debit it). A booking's revenue and fee become payable once its event
-- ended PAYOUT_SETTLEMENT_DELAY before a run's cut-off; refunds and fee reversals at once.
CREATE TABLE payout.entries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host_id text NOT NULL,
    currency char(3) NOT NULL,
    booking_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('revenue', 'fee', 'refund', 'fee_reversal')),
    amount bigint NOT NULL,
    -- The event that caused the entry: at most one entry of each kind per event.
    source_event_id uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    -- Set on revenue and fee entries: they settle after the booking's event ends.
    event_ends_at timestamptz,
    created_at timestamptz NOT NULL,
    UNIQUE (source_event_id, kind),
    CHECK (CASE kind WHEN 'revenue' THEN amount > 0 WHEN 'fee_reversal' THEN amount > 0 ELSE amount < 0 END),
    CHECK ((kind IN ('revenue', 'fee')) = (event_ends_at IS NOT NULL))
);
CREATE INDEX entries_by_booking ON payout.entries (booking_id);

-- The entries no live payout covers yet, so a run reads what it may pay and not the whole history.
-- An entry leaves when a payout covers it and comes back when that payout fails.
--
-- No foreign keys on open_entries and payout_items: their rows are written from joins with the
-- rows they name, in the same statement, by the millions per run, and a row-by-row key check
-- would cost more than the run itself; each run's reconciliation checks every item's entry,
-- owner and amount instead.
CREATE TABLE payout.open_entries (
    entry_id bigint PRIMARY KEY,
    host_id text NOT NULL,
    currency char(3) NOT NULL
);
CREATE INDEX open_entries_by_host ON payout.open_entries (host_id, currency, entry_id);

-- One run per date (invariant 4). The cut-off and the settlement boundary are fixed when the run is
-- first created, so a resumed run selects exactly what the first attempt would have.
CREATE TABLE payout.runs (
    id uuid PRIMARY KEY,
    run_date date NOT NULL UNIQUE,
    cutoff timestamptz NOT NULL,
    -- Revenue and fees of bookings whose event ended at or before this are payable.
    settled_before timestamptz NOT NULL,
    -- The latest earlier run's cut-off: entries payable by then and still open are "carried in".
    previous_cutoff timestamptz,
    status text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    phase text NOT NULL CHECK (phase IN ('planning', 'computing', 'reconciling', 'publishing', 'done')),
    host_count integer NOT NULL DEFAULT 0 CHECK (host_count >= 0),
    batch_count integer NOT NULL DEFAULT 0 CHECK (batch_count >= 0),
    mismatches jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL,
    started_at timestamptz,
    completed_at timestamptz,
    CHECK ((status = 'running') = (completed_at IS NULL))
);
CREATE INDEX runs_newest_first ON payout.runs (created_at DESC, id DESC);
CREATE INDEX runs_unfinished ON payout.runs (created_at) WHERE status = 'running';

-- A run's work list: each host and currency with payable entries at its cut-off, in batches.
CREATE TABLE payout.run_hosts (
    run_id uuid NOT NULL REFERENCES payout.runs (id),
    host_id text NOT NULL,
    currency char(3) NOT NULL,
    batch integer NOT NULL CHECK (batch >= 0),
    PRIMARY KEY (run_id, host_id, currency)
);
CREATE INDEX run_hosts_by_batch ON payout.run_hosts (run_id, batch);

-- Batches done; a batch's lines, payouts and items commit with its row here.
CREATE TABLE payout.run_batches (
    run_id uuid NOT NULL REFERENCES payout.runs (id),
    batch integer NOT NULL CHECK (batch >= 0),
    lines integer NOT NULL,
    completed_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, batch)
);

-- The report: one line per host and currency of the run.
-- net = gross - fees - refunds + fee_reversals + carried_in.
CREATE TABLE payout.run_lines (
    run_id uuid NOT NULL REFERENCES payout.runs (id),
    host_id text NOT NULL,
    currency char(3) NOT NULL,
    bookings integer NOT NULL CHECK (bookings >= 0),
    gross bigint NOT NULL CHECK (gross >= 0),
    fees bigint NOT NULL CHECK (fees >= 0),
    refunds bigint NOT NULL CHECK (refunds >= 0),
    fee_reversals bigint NOT NULL CHECK (fee_reversals >= 0),
    carried_in bigint NOT NULL,
    net bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('payout', 'carried', 'no_account')),
    payout_id uuid,
    PRIMARY KEY (run_id, host_id, currency),
    CHECK (net = gross - fees - refunds + fee_reversals + carried_in),
    CHECK ((status = 'payout') = (payout_id IS NOT NULL))
);

-- One payout per host and currency of a run; a transfer at the provider.
CREATE TABLE payout.payouts (
    id uuid PRIMARY KEY,
    run_id uuid NOT NULL REFERENCES payout.runs (id),
    host_id text NOT NULL,
    currency char(3) NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    destination text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    provider_ref text,
    error text,
    -- When payout.created went to the outbox (after the run reconciled); nothing is transferred before.
    announced_at timestamptz,
    -- Its items summed by kind, as its events carry them (written with the items; reconciled).
    item_count integer NOT NULL CHECK (item_count > 0),
    item_bookings integer NOT NULL CHECK (item_bookings >= 0),
    item_revenue bigint NOT NULL,
    item_fees bigint NOT NULL,
    item_refunds bigint NOT NULL,
    item_fee_reversals bigint NOT NULL,
    created_at timestamptz NOT NULL,
    paid_at timestamptz,
    failed_at timestamptz,
    UNIQUE (run_id, host_id, currency),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL AND provider_ref IS NOT NULL)),
    CHECK ((status = 'failed') = (failed_at IS NOT NULL AND error IS NOT NULL))
);
CREATE INDEX payouts_by_host ON payout.payouts (host_id, created_at DESC, id DESC);
CREATE INDEX payouts_unannounced ON payout.payouts (run_id) WHERE announced_at IS NULL AND status = 'pending';

-- The entries a payout covers. A live (not released) item per entry at most (invariant 3); a failed
-- payout's items are released, and their entries are open again.
CREATE TABLE payout.payout_items (
    payout_id uuid NOT NULL,
    entry_id bigint NOT NULL,
    released boolean NOT NULL DEFAULT false,
    PRIMARY KEY (payout_id, entry_id)
);
CREATE UNIQUE INDEX payout_items_entry_once ON payout.payout_items (entry_id) WHERE NOT released;
