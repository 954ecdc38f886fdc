import Foundation
import Messaging
import Postgres
import SharedModel

/// `payout.runs`, `run_hosts`, `run_batches`, `run_lines`, `payouts` and `payout_items`: the only SQL
/// of payout runs. Every step is set-based: a batch's lines, payouts and items are written by one
/// statement from the open entries of its hosts, whatever their number.
enum PayoutRunStore {
    static let columns: PostgresStatement = """
        SELECT id, run_date::text, cutoff, settled_before, status, phase, host_count, batch_count, mismatches::text, created_at,
               started_at, completed_at
        FROM payout.runs
        """

    static func run(_ row: PostgresRow) throws -> PayoutRun {
        let mismatches = try JSONDecoder().decode([Mismatch].self, from: Data(try row.decode(String.self, at: 8).utf8))
        return PayoutRun(
            id: try row.decode(UUID.self, at: 0), runDate: try row.decode(String.self, at: 1), cutoff: try row.decode(Date.self, at: 2),
            settledBefore: try row.decode(Date.self, at: 3), status: PayoutRun.Status(rawValue: try row.decode(String.self, at: 4)) ?? .failed,
            phase: PayoutRun.Phase(rawValue: try row.decode(String.self, at: 5)) ?? .done, hostCount: Int(try row.decode(Int32.self, at: 6)),
            batchCount: Int(try row.decode(Int32.self, at: 7)), mismatches: mismatches, createdAt: try row.decode(Date.self, at: 9),
            startedAt: try row.decode(Date?.self, at: 10), completedAt: try row.decode(Date?.self, at: 11))
    }

    /// The run of `date`, created with `cutoff` and `settledBefore` unless it exists; `created` says
    /// which. The previous cut-off (what counts as carried in) is fixed here too.
    static func createOrFind(
        date: RunDate, cutoff: Date, settledBefore: Date, now: Date, in transaction: PostgresTransaction
    ) throws -> (run: PayoutRun, created: Bool) {
        let day = date.description
        let inserted = try transaction.query(
            """
            INSERT INTO payout.runs (id, run_date, cutoff, settled_before, previous_cutoff, status, phase, created_at)
            SELECT \(UUID.timeOrdered()), \(day)::date, \(cutoff), \(settledBefore),
                   (SELECT max(cutoff) FROM payout.runs WHERE run_date < \(day)::date), 'running', 'planning', \(now)
            ON CONFLICT (run_date) DO NOTHING RETURNING id
            """)
        guard let run = try transaction.query(columns + " WHERE run_date = \(day)::date").first.map(Self.run) else {
            throw PostgresError(code: .invalidConfiguration, message: "the run of \(day) vanished as it was created")
        }
        return (run, !inserted.isEmpty)
    }

    static func run(_ id: UUID, in transaction: PostgresTransaction) throws -> PayoutRun? {
        try transaction.query(columns + " WHERE id = \(id)").first.map(Self.run)
    }

    /// What `payout serve` reports about runs (``PayoutRunGauges``): runs per status, the cut-off of the
    /// latest completed run, and whether the latest finished run (by date) failed, with its mismatches.
    static func gauges(in transaction: PostgresTransaction) throws -> RunGaugeValues {
        var values = RunGaugeValues()
        for row in try transaction.query("SELECT status, count(*) FROM payout.runs GROUP BY status") {
            if let status = PayoutRun.Status(rawValue: try row.decode(String.self, at: 0)) {
                values.runs[status] = Int(try row.decode(Int64.self, at: 1))
            }
        }
        let rows = try transaction.query(
            """
            SELECT (SELECT max(cutoff) FROM payout.runs WHERE status = 'completed'), latest.status, latest.mismatches
            FROM (SELECT 1) one
            LEFT JOIN LATERAL (
                SELECT status, jsonb_array_length(mismatches) AS mismatches FROM payout.runs
                WHERE status <> 'running' ORDER BY run_date DESC LIMIT 1
            ) latest ON true
            """)
        guard let row = rows.first else { return values }
        values.lastCompletedCutoff = try row.decode(Date?.self, at: 0)
        values.lastFinishedFailed = try row.decode(String?.self, at: 1) == PayoutRun.Status.failed.rawValue
        values.lastFinishedMismatches = Int(try row.decode(Int32?.self, at: 2) ?? 0)
        return values
    }

    /// Unfinished runs, oldest first.
    static func unfinished(in transaction: PostgresTransaction) throws -> [UUID] {
        try transaction.query("SELECT id FROM payout.runs WHERE status = 'running' ORDER BY created_at").map { try $0.decode(UUID.self, at: 0) }
    }

    /// The condition that entry `e` is not held back: no dispute of its booking is open. A disputed
    /// booking's entries wait until the dispute closes (won: paid as they are; lost: with its debit).
    static let notHeld: PostgresStatement =
        "NOT EXISTS (SELECT 1 FROM payout.disputes held WHERE held.booking_id = e.booking_id AND held.status = 'open')"

    /// Lists the host balances with entries payable at the run's cut-off into batches of `batchHosts`,
    /// and moves the run to `computing`. The plan is kept, so a resumed run works through the same batches.
    ///
    /// The balances with open entries are found by skipping through `open_entries_by_host`, one index
    /// probe per balance (`balances`), and each is kept when one of its entries is payable, which is
    /// usually its first (the `EXISTS`). Joining every open entry to its ledger row and grouping them
    /// read the whole ledger instead: 2.4 s for 2.2 million open entries over 10,000 balances, against
    /// 0.2 s (docs/performance.md, "Payout").
    static func plan(_ runID: UUID, batchHosts: Int, now: Date, in transaction: PostgresTransaction) throws {
        try transaction.query(
            """
            WITH RECURSIVE balances (host_id, currency) AS (
                (SELECT o.host_id, o.currency FROM payout.open_entries o ORDER BY o.host_id, o.currency LIMIT 1)
                UNION ALL
                SELECT next.host_id, next.currency
                FROM balances b,
                     LATERAL (SELECT o.host_id, o.currency FROM payout.open_entries o
                              WHERE (o.host_id, o.currency) > (b.host_id, b.currency)
                              ORDER BY o.host_id, o.currency LIMIT 1) next
            )
            INSERT INTO payout.run_hosts (run_id, host_id, currency, batch)
            SELECT r.id, b.host_id, b.currency, ((row_number() OVER (ORDER BY b.host_id, b.currency)) - 1) / \(batchHosts)
            FROM payout.runs r, balances b
            WHERE r.id = \(runID)
              AND EXISTS (SELECT 1 FROM payout.open_entries o JOIN payout.entries e ON e.id = o.entry_id
                          WHERE o.host_id = b.host_id AND o.currency = b.currency
                            AND e.occurred_at <= r.cutoff AND (e.event_ends_at IS NULL OR e.event_ends_at <= r.settled_before)
                            AND \(notHeld))
            ON CONFLICT DO NOTHING
            """)
        try transaction.query(
            """
            UPDATE payout.runs SET phase = 'computing', started_at = \(now),
                   host_count = (SELECT count(*) FROM payout.run_hosts WHERE run_id = \(runID)),
                   batch_count = (SELECT coalesce(max(batch) + 1, 0) FROM payout.run_hosts WHERE run_id = \(runID))
            WHERE id = \(runID) AND phase = 'planning'
            """)
    }

    /// Refreshes the statistics of the plan a run's batches join with...
    static let analyzePlan: PostgresStatement = "ANALYZE payout.run_hosts"
    /// ... and what reconciliation and the announcements read.
    static let analyzeComputed: PostgresStatement = "ANALYZE payout.payouts, payout.payout_items"

    /// The batches not computed yet, in order.
    static func pendingBatches(of runID: UUID, in transaction: PostgresTransaction) throws -> [Int] {
        try transaction.query(
            """
            SELECT b FROM payout.runs r, generate_series(0, r.batch_count - 1) b
            WHERE r.id = \(runID) AND NOT EXISTS (SELECT 1 FROM payout.run_batches d WHERE d.run_id = r.id AND d.batch = b)
            ORDER BY b
            """
        ).map { Int(try $0.decode(Int32.self, at: 0)) }
    }

    /// How many host balances the computed batches covered.
    static func hostsDone(of runID: UUID, in transaction: PostgresTransaction) throws -> Int {
        let rows = try transaction.query(
            """
            SELECT count(*) FROM payout.run_hosts h
            WHERE h.run_id = \(runID) AND EXISTS (SELECT 1 FROM payout.run_batches d WHERE d.run_id = h.run_id AND d.batch = h.batch)
            """)
        return Int(try rows[0].decode(Int64.self, at: 0))
    }

    /// Computes one batch in one statement: its hosts' open entries payable at the cut-off are summed
    /// into report lines; each line with an account and a positive balance becomes a pending payout
    /// whose items are exactly those entries, which stop being open; the batch is marked done. A batch
    /// done before (a resumed or concurrent runner) violates `run_batches`' key and changes nothing.
    /// Returns the number of lines and payouts written.
    ///
    /// A balance is paid rounded down to the provider's step in its currency (``TransferProvider/rules``:
    /// KWD in steps of 10, MGA of 100); the rest is held back with two entries of the payout: `rounding`
    /// (-the rest, one of its items) and `rounding_carried` (+the rest, open for the next run). A
    /// balance below one step is carried whole.
    static func compute(_ runID: UUID, batch: Int, now: Date, in transaction: PostgresTransaction) throws -> (lines: Int, payouts: Int) {
        // A batch's entries are sorted and hashed in memory, not in temporary files.
        try transaction.query("SET LOCAL work_mem = '64MB'")
        let steps = TransferProvider.rules.amountSteps
        let rows = try transaction.query(
            """
            WITH run AS (
                SELECT id, cutoff, settled_before, previous_cutoff, cutoff - settled_before AS delay FROM payout.runs WHERE id = \(runID)
            ),
            candidates AS (
                SELECT e.id, e.host_id, e.currency, e.booking_id, e.kind, e.amount,
                       -- A rest an earlier payout held back (or the rounding items of one that failed).
                       e.kind IN ('rounding', 'rounding_carried')
                       OR coalesce(e.occurred_at <= run.previous_cutoff
                                   AND (e.event_ends_at IS NULL OR e.event_ends_at <= run.previous_cutoff - run.delay), false) AS carried
                FROM run
                JOIN payout.run_hosts h ON h.run_id = run.id AND h.batch = \(batch)
                JOIN payout.open_entries o ON o.host_id = h.host_id AND o.currency = h.currency
                JOIN payout.entries e ON e.id = o.entry_id
                WHERE e.occurred_at <= run.cutoff AND (e.event_ends_at IS NULL OR e.event_ends_at <= run.settled_before)
                  AND \(notHeld)
            ),
            lines AS (
                SELECT c.host_id, c.currency,
                       count(DISTINCT c.booking_id) FILTER (WHERE c.kind = 'revenue') AS bookings,
                       coalesce(sum(c.amount) FILTER (WHERE c.kind = 'revenue' AND NOT c.carried), 0) AS gross,
                       coalesce(-sum(c.amount) FILTER (WHERE c.kind = 'fee' AND NOT c.carried), 0) AS fees,
                       coalesce(-sum(c.amount) FILTER (WHERE c.kind = 'refund' AND NOT c.carried), 0) AS refunds,
                       coalesce(sum(c.amount) FILTER (WHERE c.kind = 'fee_reversal' AND NOT c.carried), 0) AS fee_reversals,
                       coalesce(-sum(c.amount) FILTER (WHERE c.kind = 'dispute' AND NOT c.carried), 0) AS disputes,
                       coalesce(sum(c.amount) FILTER (WHERE c.carried), 0) AS carried_in,
                       sum(c.amount) AS net,
                       count(*) AS item_count,
                       coalesce(sum(c.amount) FILTER (WHERE c.kind = 'revenue'), 0) AS item_revenue,
                       coalesce(sum(c.amount) FILTER (WHERE c.kind = 'fee'), 0) AS item_fees,
                       coalesce(sum(c.amount) FILTER (WHERE c.kind = 'refund'), 0) AS item_refunds,
                       coalesce(sum(c.amount) FILTER (WHERE c.kind = 'fee_reversal'), 0) AS item_fee_reversals,
                       coalesce(sum(c.amount) FILTER (WHERE c.kind = 'dispute'), 0) AS item_disputes,
                       coalesce(sum(c.amount) FILTER (WHERE c.kind IN ('rounding', 'rounding_carried')), 0) AS item_rounding
                FROM candidates c GROUP BY c.host_id, c.currency
            ),
            -- The rest below the provider's step, for a positive balance.
            rested AS (
                SELECT l.*, CASE WHEN l.net > 0 THEN l.net % coalesce(s.step, 1) ELSE 0 END AS rest
                FROM lines l
                LEFT JOIN unnest(\(steps.map(\.currency))::text[], \(steps.map(\.step))::bigint[]) AS s (currency, step)
                  ON s.currency = l.currency::text
            ),
            decided AS MATERIALIZED (
                SELECT r.*, ho.payout_account,
                       CASE WHEN ho.payout_account IS NULL THEN 'no_account' WHEN r.net - r.rest > 0 THEN 'payout' ELSE 'carried' END AS status,
                       CASE WHEN ho.payout_account IS NOT NULL AND r.net - r.rest > 0 THEN messaging.uuid_v7() END AS payout_id
                FROM rested r LEFT JOIN payout.hosts ho ON ho.host_id = r.host_id
            ),
            payouts AS (
                INSERT INTO payout.payouts
                    (id, run_id, host_id, currency, amount, destination, status, created_at, item_count, item_bookings, item_revenue,
                     item_fees, item_refunds, item_fee_reversals, item_disputes, item_rounding)
                SELECT d.payout_id, \(runID), d.host_id, d.currency, d.net - d.rest, d.payout_account, 'pending', \(now),
                       d.item_count + (d.rest > 0)::int, d.bookings, d.item_revenue, d.item_fees, d.item_refunds, d.item_fee_reversals,
                       d.item_disputes, d.item_rounding - d.rest
                FROM decided d WHERE d.status = 'payout'
                RETURNING id, host_id, currency
            ),
            rounded AS (
                INSERT INTO payout.entries (host_id, currency, booking_id, kind, amount, source_event_id, occurred_at, event_ends_at, created_at)
                SELECT d.host_id, d.currency, NULL, k.kind, k.sign * d.rest, d.payout_id, run.cutoff, NULL, \(now)
                FROM decided d CROSS JOIN run CROSS JOIN (VALUES ('rounding', -1), ('rounding_carried', 1)) AS k (kind, sign)
                WHERE d.status = 'payout' AND d.rest > 0
                RETURNING id, host_id, currency, kind, source_event_id
            ),
            items AS (
                INSERT INTO payout.payout_items (payout_id, entry_id)
                SELECT p.id, c.id FROM payouts p JOIN candidates c ON c.host_id = p.host_id AND c.currency = p.currency
                UNION ALL
                SELECT r.source_event_id, r.id FROM rounded r WHERE r.kind = 'rounding'
                RETURNING entry_id
            ),
            closed AS (
                DELETE FROM payout.open_entries o USING items i WHERE o.entry_id = i.entry_id RETURNING 1
            ),
            carried_rest AS (
                INSERT INTO payout.open_entries (entry_id, host_id, currency)
                SELECT r.id, r.host_id, r.currency FROM rounded r WHERE r.kind = 'rounding_carried'
                RETURNING 1
            ),
            report AS (
                INSERT INTO payout.run_lines
                    (run_id, host_id, currency, bookings, gross, fees, refunds, fee_reversals, disputes, carried_in, rounding, net, status,
                     payout_id)
                SELECT \(runID), d.host_id, d.currency, d.bookings, d.gross, d.fees, d.refunds, d.fee_reversals, d.disputes, d.carried_in,
                       CASE WHEN d.status = 'payout' THEN d.rest ELSE 0 END,
                       CASE WHEN d.status = 'payout' THEN d.net - d.rest ELSE d.net END, d.status, d.payout_id
                FROM decided d
                RETURNING 1
            ),
            done AS (
                INSERT INTO payout.run_batches (run_id, batch, lines, completed_at)
                SELECT \(runID), \(batch), (SELECT count(*) FROM decided), \(now)
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM report), (SELECT count(*) FROM payouts), (SELECT count(*) FROM closed), (SELECT count(*) FROM done),
                   (SELECT count(*) FROM carried_rest)
            """)
        return (Int(try rows[0].decode(Int64.self, at: 0)), Int(try rows[0].decode(Int64.self, at: 1)))
    }

    /// Moves the run from `computing` to `reconciling` once every batch is done.
    static func finishComputing(_ runID: UUID, in transaction: PostgresTransaction) throws {
        try transaction.query(
            """
            UPDATE payout.runs r SET phase = 'reconciling'
            WHERE r.id = \(runID) AND r.phase = 'computing'
              AND (SELECT count(*) FROM payout.run_batches d WHERE d.run_id = r.id) = r.batch_count
            """)
    }

    /// Checks the run's payouts against the ledger, in SQL: every payout is the sum of its items' entries
    /// (all there, of its own host and currency), no entry of the run's payouts is in another payout
    /// that did not fail, every payout line of the report is its payout, and per currency the run's
    /// total is the ledger movements it consumed.
    static func reconcile(_ runID: UUID, in transaction: PostgresTransaction) throws -> [Mismatch] {
        var mismatches: [Mismatch] = []
        var totals: [Mismatch] = []
        // The payouts' and the currencies' checks from one pass over the run's items and their entries
        // (`summed`, per payout and entry currency). The items are the outer side of every join, so the
        // pass can run on parallel workers (Postgres 15 does not run a right join in parallel), and the
        // payouts are checked before they are ordered and cut to 100: with the `LIMIT` beside it the
        // planner joined them to their sums in a nested loop (50 million comparisons for 10,000 payouts).
        // A row is a payout (part 0: amount, its items' total, foreign items) or a currency (part 1:
        // paid, reported, consumed).
        for row in try transaction.query(
            """
            WITH summed AS MATERIALIZED (
                SELECT i.payout_id, e.currency AS entry_currency, count(*) AS items, coalesce(sum(e.amount), 0) AS total,
                       count(*) FILTER (WHERE e.id IS NULL OR e.host_id <> p.host_id OR e.currency <> p.currency) AS foreign_items
                FROM payout.payouts p
                JOIN payout.payout_items i ON i.payout_id = p.id
                LEFT JOIN payout.entries e ON e.id = i.entry_id
                WHERE p.run_id = \(runID)
                GROUP BY i.payout_id, e.currency
            ),
            per_payout AS (
                SELECT payout_id, sum(items) AS items, sum(total) AS total, sum(foreign_items) AS foreign_items FROM summed GROUP BY payout_id
            ),
            payouts AS MATERIALIZED (
                SELECT p.id::text AS payout, p.host_id, p.currency::text AS currency, p.amount, coalesce(s.total, 0)::bigint AS total,
                       coalesce(s.foreign_items, 0)::bigint AS foreign_items,
                       p.item_count <> coalesce(s.items, 0)
                       OR p.item_revenue + p.item_fees + p.item_refunds + p.item_fee_reversals + p.item_disputes + p.item_rounding <> p.amount
                       AS summary_differs
                FROM payout.payouts p LEFT JOIN per_payout s ON s.payout_id = p.id
                WHERE p.run_id = \(runID)
            ),
            paid AS (SELECT currency, sum(amount) AS total FROM payout.payouts WHERE run_id = \(runID) GROUP BY currency),
            reported AS (
                SELECT currency, sum(net) AS total FROM payout.run_lines WHERE run_id = \(runID) AND status = 'payout' GROUP BY currency
            ),
            consumed AS (SELECT entry_currency AS currency, sum(total) AS total FROM summed WHERE entry_currency IS NOT NULL GROUP BY 1),
            currencies AS (
                SELECT currency::text, coalesce(paid.total, 0)::bigint AS paid, coalesce(reported.total, 0)::bigint AS reported,
                       coalesce(consumed.total, 0)::bigint AS consumed
                FROM paid FULL JOIN reported USING (currency) FULL JOIN consumed USING (currency)
                WHERE coalesce(paid.total, 0) <> coalesce(consumed.total, 0) OR coalesce(reported.total, 0) <> coalesce(consumed.total, 0)
            )
            (SELECT 0 AS part, payout, host_id, currency, amount, total, foreign_items, summary_differs FROM payouts
             WHERE amount <> total OR foreign_items > 0 OR summary_differs
             ORDER BY host_id, currency LIMIT 100)
            UNION ALL
            SELECT 1, NULL, NULL, currency, paid, reported, consumed, false FROM currencies
            ORDER BY 1, 3, 4
            """)
        {
            let currency = try row.decode(String.self, at: 3)
            let (first, second, third) = (try row.decode(Int64.self, at: 4), try row.decode(Int64.self, at: 5), try row.decode(Int64.self, at: 6))
            guard try row.decode(Int32.self, at: 0) == 0 else {
                totals.append(
                    Mismatch(
                        check: "currency_total",
                        detail: "in \(currency) the run pays \(first) and reports \(second), but its payouts consumed \(third) of ledger movements"))
                continue
            }
            let (payout, host) = (try row.decode(String.self, at: 1), try row.decode(String.self, at: 2))
            let (amount, items, foreign) = (first, second, third)
            if amount != items {
                mismatches.append(
                    Mismatch(
                        check: "payout_amount",
                        detail: "payout \(payout) to \(host) is \(amount) \(currency) but its items add up to \(items)"))
            }
            if try row.decode(Bool.self, at: 7) {
                mismatches.append(
                    Mismatch(check: "payout_summary", detail: "payout \(payout) to \(host): the summary its events carry is not its items"))
            }
            if foreign > 0 {
                mismatches.append(
                    Mismatch(
                        check: "item_owner",
                        detail: "payout \(payout) to \(host) covers \(foreign) entries that are missing or of another host or currency"))
            }
        }
        // An entry of the run's payouts in another payout that did not fail. The run's items are live
        // (nothing of a run is released before it reconciled), and two live items of one entry cannot
        // exist (the unique index payout_items_entry_once), so the other item can only be a released one
        // whose payout did not fail: released without failing, its entry paid twice. Starting from the
        // released items (their own index) keeps the check's cost off the items of every earlier run.
        for row in try transaction.query(
            """
            SELECT mine.entry_id, string_agg(other.payout_id::text, ', ' ORDER BY other.payout_id)
            FROM payout.payout_items other
            JOIN payout.payouts theirs ON theirs.id = other.payout_id AND theirs.status <> 'failed'
            JOIN payout.payout_items mine ON mine.entry_id = other.entry_id AND NOT mine.released AND mine.payout_id <> other.payout_id
            JOIN payout.payouts p ON p.id = mine.payout_id
            WHERE other.released AND p.run_id = \(runID)
            GROUP BY mine.entry_id
            ORDER BY mine.entry_id
            LIMIT 100
            """)
        {
            mismatches.append(
                Mismatch(
                    check: "entry_in_two_payouts",
                    detail: "entry \(try row.decode(Int64.self, at: 0)) of this run is also in payouts \(try row.decode(String.self, at: 1))"))
        }
        for row in try transaction.query(
            """
            SELECT l.host_id, l.currency, l.net, p.amount, p.id::text
            FROM (SELECT * FROM payout.run_lines WHERE run_id = \(runID) AND status = 'payout') l
            FULL JOIN (SELECT * FROM payout.payouts WHERE run_id = \(runID)) p ON p.id = l.payout_id
            WHERE p.id IS NULL OR l.payout_id IS NULL OR p.amount <> l.net
            ORDER BY 1, 2
            LIMIT 100
            """)
        {
            let host = try row.decode(String?.self, at: 0) ?? "?"
            let currency = try row.decode(String?.self, at: 1) ?? "?"
            let net = try row.decode(Int64?.self, at: 2).map(String.init) ?? "no line"
            let amount = try row.decode(Int64?.self, at: 3).map(String.init) ?? "no payout"
            mismatches.append(
                Mismatch(
                    check: "line_amount",
                    detail: "report line of \(host) in \(currency) says \(net) but payout \(try row.decode(String?.self, at: 4) ?? "-") is \(amount)")
            )
        }
        return mismatches + totals
    }

    /// A reconciled run goes on to announce its payouts.
    static func reconciled(_ runID: UUID, in transaction: PostgresTransaction) throws {
        try transaction.query("UPDATE payout.runs SET phase = 'publishing' WHERE id = \(runID) AND phase = 'reconciling'")
    }

    /// A run that did not reconcile fails and pays nothing: its payouts fail before any was announced,
    /// their items are released and their entries open again for a later run.
    static func fail(_ runID: UUID, mismatches: [Mismatch], now: Date, in transaction: PostgresTransaction) throws {
        let json = PostgresJSONB(try JSONEncoder().encode(mismatches))
        try transaction.query(
            """
            UPDATE payout.payouts SET status = 'failed', error = 'the run did not reconcile with the ledger; nothing was paid', failed_at = \(now)
            WHERE run_id = \(runID) AND status = 'pending'
            """)
        try release(payoutsOf: "SELECT id FROM payout.payouts WHERE run_id = \(runID)", in: transaction)
        try transaction.query(
            """
            UPDATE payout.runs SET status = 'failed', phase = 'done', mismatches = \(json), completed_at = \(now) WHERE id = \(runID)
            """)
    }

    /// Releases the items of the payouts `selection` names and opens their entries again.
    static func release(payoutsOf selection: PostgresStatement, in transaction: PostgresTransaction) throws {
        try transaction.query(
            """
            WITH released AS (
                UPDATE payout.payout_items SET released = true WHERE payout_id IN (\(selection)) AND NOT released RETURNING entry_id
            )
            INSERT INTO payout.open_entries (entry_id, host_id, currency)
            SELECT e.id, e.host_id, e.currency FROM released r JOIN payout.entries e ON e.id = r.entry_id
            ON CONFLICT DO NOTHING
            """)
    }

    /// Up to `limit` of the run's payouts not announced yet, with their items summed.
    static func unannounced(of runID: UUID, limit: Int, in transaction: PostgresTransaction) throws -> [PayoutDetails] {
        try details(
            of: """
                SELECT id FROM payout.payouts WHERE run_id = \(runID) AND status = 'pending' AND announced_at IS NULL ORDER BY id LIMIT \(limit)
                """, in: transaction)
    }

    /// The payouts `selection` names, each with its items summed by kind (kept on the payout when the
    /// run computed it; the reconciliation checks the payout against its items).
    static func details(of selection: PostgresStatement, in transaction: PostgresTransaction) throws -> [PayoutDetails] {
        try transaction.query(
            """
            SELECT id, run_id, host_id, currency, amount, item_count, item_bookings, item_revenue, item_fees, item_refunds, item_fee_reversals,
                   item_disputes, item_rounding
            FROM payout.payouts WHERE id IN (\(selection)) ORDER BY id
            """
        ).map { row in
            PayoutDetails(
                payoutID: try row.decode(UUID.self, at: 0), runID: try row.decode(UUID.self, at: 1),
                hostID: try HostID(try row.decode(String.self, at: 2)),
                amount: Money(amount: try row.decode(Int64.self, at: 4), currency: try Currency(try row.decode(String.self, at: 3))),
                items: PayoutItemSummary(
                    count: Int(try row.decode(Int32.self, at: 5)), bookings: Int(try row.decode(Int32.self, at: 6)),
                    revenue: try row.decode(Int64.self, at: 7), fees: try row.decode(Int64.self, at: 8), refunds: try row.decode(Int64.self, at: 9),
                    feeReversals: try row.decode(Int64.self, at: 10), disputes: try row.decode(Int64.self, at: 11),
                    rounding: try row.decode(Int64.self, at: 12)))
        }
    }

    /// The entries of the payouts `selection` names, by payout, in entry order.
    static func items(of selection: PostgresStatement, in transaction: PostgresTransaction) throws -> [UUID: [PayoutItem]] {
        var items: [UUID: [PayoutItem]] = [:]
        for row in try transaction.query(
            """
            SELECT i.payout_id, e.id, e.booking_id, e.kind, e.amount
            FROM payout.payout_items i JOIN payout.entries e ON e.id = i.entry_id
            WHERE i.payout_id IN (\(selection))
            ORDER BY i.payout_id, e.id
            """)
        {
            items[try row.decode(UUID.self, at: 0), default: []].append(
                PayoutItem(
                    entryID: try row.decode(Int64.self, at: 1), bookingID: try row.decode(UUID?.self, at: 2).map(BookingID.init),
                    kind: PayoutItem.Kind(rawValue: try row.decode(String.self, at: 3)) ?? .revenue, amount: try row.decode(Int64.self, at: 4)))
        }
        return items
    }

    /// Marks payouts announced (their `payout.created` goes to the outbox in the same transaction).
    static func announced(_ ids: [UUID], at now: Date) -> PostgresStatement {
        "UPDATE payout.payouts SET announced_at = \(now) WHERE id = ANY(\(ids)) AND announced_at IS NULL"
    }

    /// The run is done: every payout announced.
    static func complete(_ runID: UUID, now: Date, in transaction: PostgresTransaction) throws {
        try transaction.query(
            "UPDATE payout.runs SET status = 'completed', phase = 'done', completed_at = \(now) WHERE id = \(runID) AND phase = 'publishing'")
    }
}
