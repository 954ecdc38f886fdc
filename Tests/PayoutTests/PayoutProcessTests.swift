import Foundation
import Glibc
import Postgres
import ServiceTestSupport
import SharedModel
import TestSupport
import Testing

/// `payout run` as separate processes over a generated ledger: two at once, and killed with SIGKILL at
/// random points until one finishes. Every outcome is compared with an uninterrupted run over the same
/// ledger in a database of its own.
///
/// `PAYOUT_KILL_REPETITIONS` (default 5) and `PAYOUT_KILL_BOOKINGS` (default 5,000) size the kill loop;
/// `scripts/payout-kill-loop` runs it with 20 and 20,000. Both tests run on the disruptable Postgres
/// with exclusive access, like the other process tests: their runners load both cores, which the
/// timing of the other process suites must not share.
@Suite("Payout runs across processes: concurrent runners and kill -9", .serialized)
struct PayoutProcessTests {
    static let runDate = "2026-11-20"

    /// What a run produced, without its random ids: its report lines and payouts, sorted.
    struct Outcome: Equatable {
        var lines: [String]
        var payouts: [String]
        var items: Int
    }

    static func environment(_ url: String) -> [String: String] {
        ["DATABASE_URL": url, "PAYOUT_SETTLEMENT_DELAY": "0s", "PAYOUT_BATCH_HOSTS": "5", "LOG_LEVEL": "warning"]
    }

    /// A ledger of `bookings` settled bookings over `bookings / 25` hosts, in EUR and JPY: revenue and
    /// fee entries, every tenth booking half refunded (refund and fee reversal), every 13th host with a
    /// large refund that may turn it negative, every 50th host without an account. Deterministic: the
    /// same arguments give the same ledger.
    static func generate(on postgres: PostgresClient, bookings: Int) async throws {
        let hosts = max(1, bookings / 25)
        let at = try RFC3339.date(from: "2026-11-01T10:00:00Z")
        try await postgres.query(
            """
            INSERT INTO payout.hosts (host_id, payout_account, fee_bps, created_at, updated_at)
            SELECT 'host_' || h, 'acct_' || h, CASE WHEN h % 7 = 0 THEN 550 END, \(at), \(at)
            FROM generate_series(0, \(hosts) - 1) h WHERE h % 50 <> 49
            """)
        try await postgres.query(
            """
            WITH b AS (
                SELECT g, md5('booking-' || g)::uuid AS id, 'host_' || (g % \(hosts)) AS host,
                       CASE WHEN g % 5 = 0 THEN 'JPY' ELSE 'EUR' END AS currency, (1000 + (g * 37) % 9000)::bigint AS amount
                FROM generate_series(1, \(bookings)) g
            ),
            appended AS (
                INSERT INTO payout.entries (host_id, currency, booking_id, kind, amount, source_event_id, occurred_at, event_ends_at, created_at)
                SELECT host, currency, id, 'revenue', amount, md5('confirmed-' || g)::uuid, \(at), \(at), \(at) FROM b
                UNION ALL
                SELECT host, currency, id, 'fee', -((amount * 1000 + 5000) / 10000), md5('confirmed-' || g)::uuid, \(at), \(at), \(at) FROM b
                UNION ALL
                SELECT host, currency, id, 'refund', -(amount / 2), md5('refunded-' || g)::uuid, \(at), NULL, \(at) FROM b WHERE g % 10 = 0
                UNION ALL
                SELECT host, currency, id, 'fee_reversal', (amount * 1000 + 5000) / 10000 / 2, md5('refunded-' || g)::uuid, \(at), NULL, \(at)
                FROM b WHERE g % 10 = 0
                UNION ALL
                SELECT 'host_' || h, 'EUR', md5('negative-' || h)::uuid, 'refund', -200000, md5('negative-' || h)::uuid, \(at), NULL, \(at)
                FROM generate_series(0, \(hosts) - 1, 13) h
                RETURNING id, host_id, currency
            )
            INSERT INTO payout.open_entries (entry_id, host_id, currency) SELECT id, host_id, currency FROM appended
            """)
        try await postgres.query("ANALYZE payout.entries")
    }

    static func outcome(on postgres: PostgresClient) async throws -> Outcome {
        let lines = try await postgres.query(
            """
            SELECT host_id || ' ' || currency || ' ' || bookings || ' ' || gross || ' ' || fees || ' ' || refunds || ' ' || fee_reversals
                   || ' ' || carried_in || ' ' || net || ' ' || status
            FROM payout.run_lines ORDER BY host_id, currency
            """
        ).map { try $0.decode(String.self, at: 0) }
        let payouts = try await postgres.query(
            "SELECT host_id || ' ' || currency || ' ' || amount || ' ' || status FROM payout.payouts ORDER BY host_id, currency"
        ).map { try $0.decode(String.self, at: 0) }
        return Outcome(lines: lines, payouts: payouts, items: try await postgres.count("SELECT count(*) FROM payout.payout_items"))
    }

    /// The invariants that hold whatever happened: one run, completed; no entry in two live payouts;
    /// each payout the sum of its items and announced exactly once.
    static func checkInvariants(on postgres: PostgresClient) async throws {
        #expect(try await postgres.count("SELECT count(*) FROM payout.runs WHERE status = 'completed'") == 1)
        #expect(try await postgres.count("SELECT count(*) FROM payout.runs") == 1)
        #expect(
            try await postgres.count(
                "SELECT count(*) FROM (SELECT entry_id FROM payout.payout_items WHERE NOT released GROUP BY entry_id HAVING count(*) > 1) twice") == 0
        )
        #expect(
            try await postgres.count(
                """
                SELECT count(*) FROM payout.payouts p
                WHERE p.amount <> (SELECT sum(e.amount) FROM payout.payout_items i JOIN payout.entries e ON e.id = i.entry_id WHERE i.payout_id = p.id)
                """) == 0)
        let payouts = try await postgres.count("SELECT count(*) FROM payout.payouts")
        #expect(try await postgres.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'payout.created'") == payouts)
        #expect(try await postgres.count("SELECT count(DISTINCT aggregate_id) FROM messaging.outbox WHERE event_type = 'payout.created'") == payouts)
    }

    /// A fresh migrated database on `server` with the generated ledger, and a client of it.
    static func ledger(bookings: Int, on server: String) async throws -> (url: String, postgres: PostgresClient) {
        let url = try await ServiceHarness.migratedDatabase(prefix: "payout_process", on: server)
        let postgres = try TestDatabase.client(url: url)
        try await generate(on: postgres, bookings: bookings)
        return (url, postgres)
    }

    /// Runs `payout run --date` to the end; returns how long it took and its output.
    static func runToEnd(_ url: String) async throws -> (elapsed: Duration, output: String) {
        let started = ContinuousClock.now
        let process = try ServiceProcess.start("payout", arguments: ["run", "--date", runDate], environment: environment(url))
        let termination = await process.child.termination()
        #expect(termination == .exited(0), "payout run: \(process.output)")
        return (ContinuousClock.now - started, process.output)
    }

    @Test("two runners of the same date at once: one run, one set of payouts, both report it")
    func concurrentRunners() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in try await Self.concurrentRunners(on: servers.databaseURL) }
    }

    static func concurrentRunners(on server: String) async throws {
        let reference = try await Self.ledger(bookings: 2_000, on: server)
        _ = try await Self.runToEnd(reference.url)
        let expected = try await Self.outcome(on: reference.postgres)
        await reference.postgres.shutdown()

        let (url, postgres) = try await Self.ledger(bookings: 2_000, on: server)
        let first = try ServiceProcess.start("payout", arguments: ["run", "--date", Self.runDate], environment: Self.environment(url))
        let second = try ServiceProcess.start("payout", arguments: ["run", "--date", Self.runDate], environment: Self.environment(url))
        let (one, two) = (await first.child.termination(), await second.child.termination())
        #expect(one == .exited(0), "first: \(first.output)")
        #expect(two == .exited(0), "second: \(second.output)")
        let runID = try await postgres.query("SELECT id::text FROM payout.runs")[0].decode(String.self, at: 0)
        #expect(first.output.contains(runID) && second.output.contains(runID))
        #expect(first.output.contains("payout run \(Self.runDate): completed") && second.output.contains("payout run \(Self.runDate): completed"))
        try await Self.checkInvariants(on: postgres)
        #expect(try await Self.outcome(on: postgres) == expected)
        // The same date once more: the same run, nothing new.
        _ = try await Self.runToEnd(url)
        #expect(try await Self.outcome(on: postgres) == expected)
        #expect(
            expected.payouts.count > 50 && expected.lines.contains { $0.hasSuffix(" carried") }
                && expected.lines.contains { $0.hasSuffix(" no_account") })
        await postgres.shutdown()
    }

    @Test("kill -9 at random points: the next start finishes the run with the totals of an uninterrupted one")
    func killedRunners() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in try await Self.killedRunners(on: servers.databaseURL) }
    }

    static func killedRunners(on server: String) async throws {
        let environment = ProcessInfo.processInfo.environment
        let repetitions = environment["PAYOUT_KILL_REPETITIONS"].flatMap(Int.init) ?? 5
        let bookings = environment["PAYOUT_KILL_BOOKINGS"].flatMap(Int.init) ?? 5_000
        let reference = try await Self.ledger(bookings: bookings, on: server)
        let uninterrupted = try await Self.runToEnd(reference.url)
        let expected = try await Self.outcome(on: reference.postgres)
        try await Self.checkInvariants(on: reference.postgres)
        // How long the reference run took from the end of planning (`started_at`) to completion, in ms.
        let afterPlanning = try await reference.postgres.count(
            "SELECT (extract(epoch FROM completed_at - started_at) * 1000)::bigint FROM payout.runs")
        await reference.postgres.shutdown()
        let window = uninterrupted.elapsed.components.seconds * 1_000 + uninterrupted.elapsed.components.attoseconds / 1_000_000_000_000_000
        var kills = 0
        var interruptedMidRun = 0
        for repetition in 1...repetitions {
            let (url, postgres) = try await Self.ledger(bookings: bookings, on: server)
            // The first attempt in odd repetitions, the second in even ones: a random first kill can come
            // after the whole run, and then the second attempt has nothing left to interrupt.
            let aimed = repetition % 2 == 1 ? 1 : 2
            for attempt in 1...3 {
                let process = try ServiceProcess.start("payout", arguments: ["run", "--date", Self.runDate], environment: Self.environment(url))
                if attempt == aimed {
                    // One kill per repetition lands after planning for sure: wait until the run's phase is
                    // past planning (or the runner ended), then at most half of what the reference run spent
                    // after planning. Kills at random points alone all landed before planning on a loaded
                    // CI machine once, where start-up took most of the window measured by the uninterrupted
                    // run. A tenth of that window, waited here before, can outlast the whole rest of the run
                    // when the reference ran on a busier machine; with it, no kill landed mid-run in one of
                    // two local scripts/test runs.
                    let deadline = ContinuousClock.now + .milliseconds(4 * window + 5_000)
                    while process.child.isRunning, ContinuousClock.now < deadline,
                        try await postgres.count("SELECT count(*) FROM payout.runs WHERE status = 'running' AND phase <> 'planning'") == 0
                    {
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    try await Task.sleep(for: .milliseconds(Int64.random(in: 0...Int64(max(1, afterPlanning / 2)))))
                } else {
                    try await Task.sleep(for: .milliseconds(Int64.random(in: 0...max(1, window))))
                }
                if process.child.isRunning {
                    process.child.send(SIGKILL)
                    kills += 1
                }
                _ = await process.child.termination()
                if try await postgres.count("SELECT count(*) FROM payout.runs WHERE status = 'running' AND phase <> 'planning'") == 1 {
                    interruptedMidRun += 1
                }
            }
            _ = try await Self.runToEnd(url)
            try await Self.checkInvariants(on: postgres)
            #expect(try await Self.outcome(on: postgres) == expected)
            await postgres.shutdown()
        }
        #expect(kills > 0, "no runner was killed: the kill window (\(window) ms) missed every run")
        #expect(interruptedMidRun > 0, "no kill landed after planning (window \(window) ms, after planning \(afterPlanning) ms)")
        TestEnvironment.logger.info(
            "payout kill loop",
            metadata: [
                "repetitions": "\(repetitions)", "bookings": "\(bookings)", "kills": "\(kills)", "mid_run": "\(interruptedMidRun)",
                "window_ms": "\(window)", "after_planning_ms": "\(afterPlanning)",
            ])
    }
}
