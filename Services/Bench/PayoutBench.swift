import ArgumentParser
import Foundation
import Logging
import Migrations
import Postgres
import SharedModel

/// `platform-bench payout-fixture`: fills the payout ledger of a database with `--bookings` settled
/// bookings over `--hosts` hosts, in the shape `LedgerHandler` (Services/Payout/Ledger) writes, so that
/// `payout run` has something to pay (`scripts/bench payout`, scripts/bench-payout/pair.sh).
///
/// Set-based, in one transaction: it first empties the payout schema's run and ledger tables (so repeated
/// runs start clean), then writes with `INSERT ... SELECT` over `generate_series` (never one event per
/// booking):
///
/// - `payout.hosts`: `host-<n>` (n from 0), account `acct_<n>`; every `--own-fee-every`-th host its own
///   fee (500-1100 bps), the others none (the platform's `--platform-fee-bps`).
/// - `payout.bookings`: booking `i` (from 0) of host `i % hosts`, in currency
///   `currencies[(i / hosts) % count]` (so every host has balances in every currency), amount
///   1,000-50,000 minor units, fee `(amount * bps + 5000) / 10000`; its event ended 30 days ago or
///   earlier (payable whatever `PAYOUT_SETTLEMENT_DELAY` up to 30 days), confirmed 14 days before that.
/// - `payout.entries`: per booking a `revenue` (+amount) and a `fee` (-fee, none when 0) entry with the
///   event's end, from the confirmation (source event `...-9000-<i>`); every `--refund-every`-th booking
///   (0: none) had half its amount refunded: a `refund` (-refund) and a `fee_reversal` (+the fee's share,
///   `(fee * r + a / 2) / a`, none when 0) entry without an event end, from the refund event
///   (`...-a000-<i>`), kept in `payout.refunds` as entered, the booking's running totals moved.
/// - `payout.open_entries`: every entry (none is paid yet).
///
/// Then `ANALYZE`. Prints one line, `payout_fixture bookings=... hosts=... balances=... entries=...
/// open_entries=... seconds=...` with the time each step took.
struct PayoutFixture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payout-fixture",
        abstract: "Fill the payout ledger with N settled bookings over H hosts (set-based SQL), for timing `payout run`.")
    @Option(help: "Postgres URL (a migrated database whose payout schema the fixture may empty).") var databaseURL: String
    @Option(help: "Settled bookings (each a revenue and a fee entry).") var bookings: Int
    @Option(help: "Hosts the bookings are spread over (booking i belongs to host i % hosts).") var hosts: Int
    @Option(help: "Every K-th booking has half its amount refunded (a refund and a fee reversal entry); 0: no refunds.")
    var refundEvery: Int = 10
    @Option(help: "Currencies, comma-separated; a host's bookings cycle through them (every host has a balance in each).")
    var currencies: String = "EUR"
    @Option(help: "The platform's fee in basis points, for hosts without their own (PLATFORM_FEE_BPS).") var platformFeeBps: Int = 1_000
    @Option(help: "Every K-th host has its own fee (500-1100 bps); 0: none.") var ownFeeEvery: Int = 10
    @Flag(help: "Migrate the database first (the platform's migrations).") var migrate = false

    func validate() throws {
        guard bookings > 0, hosts > 0, hosts <= bookings else { throw ValidationError("--bookings and --hosts must be positive, hosts <= bookings") }
        guard bookings <= 100_000_000 else { throw ValidationError("--bookings at most 100,000,000") }
        guard refundEvery >= 0, ownFeeEvery >= 0 else { throw ValidationError("--refund-every and --own-fee-every must not be negative") }
        guard (0...10_000).contains(platformFeeBps) else { throw ValidationError("--platform-fee-bps must be 0-10000") }
        _ = try currencyCodes()
    }

    /// The validated currency codes, in the order given, without repeats.
    func currencyCodes() throws -> [String] {
        var codes: [String] = []
        for part in currencies.split(separator: ",") {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let code = try? Currency(text).code else { throw ValidationError("--currencies: '\(text)' is not a currency code") }
            if !codes.contains(code) { codes.append(code) }
        }
        guard !codes.isEmpty else { throw ValidationError("--currencies names no currency") }
        return codes
    }

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var configuration = try PostgresClient.Configuration(url: databaseURL)
        configuration.maximumConnections = 1
        // Millions of rows per statement take longer than the client's default 30 s on a small machine.
        configuration.statementTimeout = .seconds(3_600)
        configuration.applicationName = "platform-bench payout-fixture"
        let postgres = PostgresClient(configuration: configuration, logger: logger)
        do {
            if migrate { try await Migrator(client: postgres, logger: logger).migrate() }
            let line = try await fill(postgres)
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        } catch {
            await postgres.shutdown()
            throw error
        }
        await postgres.shutdown()
    }

    private func fill(_ postgres: PostgresClient) async throws -> String {
        let codes = try currencyCodes()
        let (bookings, hosts, refundEvery, ownFeeEvery) = (bookings, hosts, refundEvery, ownFeeEvery)
        let platformFee = Int32(platformFeeBps)
        let clock = ContinuousClock()
        let started = clock.now
        // Events ended 30 days ago or earlier: settled for any delay up to 30 days, before any cut-off from yesterday on.
        let latestEnd = Date().addingTimeInterval(-30 * 86_400)
        let steps = try await postgres.withTransaction { transaction -> [(String, Duration)] in
            var steps: [(String, Duration)] = []
            func step(_ name: String, _ body: () throws -> Void) rethrows {
                let start = clock.now
                try body()
                steps.append((name, clock.now - start))
            }
            try step("truncate") {
                try transaction.query(
                    """
                    TRUNCATE payout.payout_items, payout.payouts, payout.run_lines, payout.run_batches, payout.run_hosts, payout.runs,
                             payout.open_entries, payout.entries, payout.refunds, payout.bookings, payout.hosts
                    RESTART IDENTITY CASCADE
                    """)
            }
            try step("hosts") {
                try transaction.query(
                    """
                    INSERT INTO payout.hosts (host_id, payout_account, fee_bps, created_at, updated_at)
                    SELECT 'host-' || n, 'acct_' || n,
                           CASE WHEN \(ownFeeEvery) > 0 AND n % \(ownFeeEvery) = 0 THEN 500 + (n % 7) * 100 END,
                           \(latestEnd) - interval '400 days', \(latestEnd) - interval '400 days'
                    FROM generate_series(0, \(hosts) - 1) AS n
                    """)
            }
            try step("bookings") {
                // What the ledger knows of each booking, computed once (the hosts' fees joined as the handler reads them).
                try transaction.query(
                    """
                    CREATE TEMPORARY TABLE bench_payout_fixture ON COMMIT DROP AS
                    SELECT b.i, b.booking_id, b.host_id, b.currency, b.amount, b.bps, b.fee, b.refunded,
                           CASE WHEN b.refunded > 0 THEN (b.fee * b.refunded + b.amount / 2) / b.amount ELSE 0 END AS fee_reversed,
                           b.ends_at, b.ends_at - interval '14 days' AS confirmed_at, b.ends_at - interval '1 day' AS refunded_at
                    FROM (
                        SELECT g.i, g.booking_id, g.host_id, g.currency, g.amount, g.bps, (g.amount * g.bps + 5000) / 10000 AS fee,
                               CASE WHEN \(refundEvery) > 0 AND (g.i + 1) % \(refundEvery) = 0 THEN g.amount / 2 ELSE 0 END AS refunded,
                               g.ends_at
                        FROM (
                            SELECT s.i, ('00000000-0000-4000-8000-' || lpad(to_hex(s.i), 12, '0'))::uuid AS booking_id,
                                   'host-' || (s.i % \(hosts)) AS host_id,
                                   (\(codes))[1 + (s.i / \(hosts)) % \(codes.count)] AS currency,
                                   1000 + (s.i * 7919) % 49001 AS amount,
                                   coalesce(h.fee_bps, \(platformFee)) AS bps,
                                   \(latestEnd) - (s.i % 86400) * interval '1 second' - (s.i / 86400) * interval '1 hour' AS ends_at
                            FROM generate_series(0::bigint, \(bookings) - 1) AS s(i)
                            JOIN payout.hosts h ON h.host_id = 'host-' || (s.i % \(hosts))
                        ) g
                    ) b
                    """)
                try transaction.query(
                    """
                    INSERT INTO payout.bookings
                        (booking_id, host_id, currency, amount, fee, fee_bps, refunded, fee_reversed, event_ends_at, confirmed_at)
                    SELECT booking_id, host_id, currency, amount, fee, bps, refunded, fee_reversed, ends_at, confirmed_at
                    FROM bench_payout_fixture ORDER BY i
                    """)
                try transaction.query(
                    """
                    INSERT INTO payout.refunds (event_id, booking_id, currency, amount, occurred_at, entered)
                    SELECT ('00000000-0000-4000-a000-' || lpad(to_hex(i), 12, '0'))::uuid, booking_id, currency, refunded, refunded_at, true
                    FROM bench_payout_fixture WHERE refunded > 0 ORDER BY i
                    """)
            }
            try step("entries") {
                // The confirmations' entries, booking by booking, then the refunds' (they came later).
                try transaction.query(
                    """
                    INSERT INTO payout.entries
                        (host_id, currency, booking_id, kind, amount, source_event_id, occurred_at, event_ends_at, created_at)
                    SELECT f.host_id, f.currency, f.booking_id, k.kind, k.amount,
                           ('00000000-0000-4000-9000-' || lpad(to_hex(f.i), 12, '0'))::uuid, f.confirmed_at, f.ends_at, f.confirmed_at
                    FROM bench_payout_fixture f
                    CROSS JOIN LATERAL (VALUES (1, 'revenue', f.amount), (2, 'fee', -f.fee)) AS k(n, kind, amount)
                    WHERE k.amount <> 0
                    ORDER BY f.i, k.n
                    """)
                try transaction.query(
                    """
                    INSERT INTO payout.entries
                        (host_id, currency, booking_id, kind, amount, source_event_id, occurred_at, event_ends_at, created_at)
                    SELECT f.host_id, f.currency, f.booking_id, k.kind, k.amount,
                           ('00000000-0000-4000-a000-' || lpad(to_hex(f.i), 12, '0'))::uuid, f.refunded_at, NULL, f.refunded_at
                    FROM bench_payout_fixture f
                    CROSS JOIN LATERAL (VALUES (1, 'refund', -f.refunded), (2, 'fee_reversal', f.fee_reversed)) AS k(n, kind, amount)
                    WHERE f.refunded > 0 AND k.amount <> 0
                    ORDER BY f.i, k.n
                    """)
            }
            try step("open_entries") {
                try transaction.query(
                    "INSERT INTO payout.open_entries (entry_id, host_id, currency) SELECT id, host_id, currency FROM payout.entries ORDER BY id")
            }
            return steps
        }
        var allSteps = steps
        let analyzeStart = clock.now
        try await postgres.query(
            """
            ANALYZE payout.hosts, payout.bookings, payout.refunds, payout.entries, payout.open_entries, payout.runs, payout.run_hosts,
                    payout.run_batches, payout.run_lines, payout.payouts, payout.payout_items
            """)
        allSteps.append(("analyze", clock.now - analyzeStart))
        let elapsed = clock.now - started

        let counts = try await postgres.query(
            """
            SELECT (SELECT count(*) FROM payout.hosts), (SELECT count(*) FROM payout.bookings), (SELECT count(*) FROM payout.refunds),
                   count(*), count(*) FILTER (WHERE kind = 'revenue'), count(*) FILTER (WHERE kind = 'fee'),
                   count(*) FILTER (WHERE kind = 'refund'), count(*) FILTER (WHERE kind = 'fee_reversal'),
                   (SELECT count(*) FROM payout.open_entries), count(DISTINCT (host_id, currency))
            FROM payout.entries
            """)[0]
        let totals = try await postgres.query(
            "SELECT currency::text, sum(amount)::bigint FROM payout.entries GROUP BY currency ORDER BY currency"
        ).map { "\(try $0.decode(String.self, at: 0)):\(try $0.decode(Int64.self, at: 1))" }
        func count(_ index: Int) throws -> Int64 { try counts.decode(Int64.self, at: index) }
        let timing = allSteps.map { "\($0.0)=\(String(format: "%.2f", $0.1.timeInterval))" }.joined(separator: " ")
        return "payout_fixture bookings=\(try count(1)) hosts=\(try count(0)) currencies=\(codes.joined(separator: ",")) "
            + "balances=\(try count(9)) entries=\(try count(3)) revenue=\(try count(4)) fee=\(try count(5)) refund=\(try count(6)) "
            + "fee_reversal=\(try count(7)) refunds=\(try count(2)) open_entries=\(try count(8)) net=\(totals.joined(separator: ",")) "
            + "seconds=\(String(format: "%.2f", elapsed.timeInterval)) (\(timing))"
    }
}
