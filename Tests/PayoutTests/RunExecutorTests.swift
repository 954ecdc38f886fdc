import Foundation
import ServiceLifecycle
import SharedModel
import TestSupport
import Testing

@testable import Payout

@Suite("payout serve: the schedule and unfinished runs")
struct RunExecutorTests {
    @Test("the next occurrence of the schedule is in PAYOUT_TIME_ZONE, and a scheduled run pays the previous day")
    func schedule() async throws {
        let clock = TestClock(try instant("2026-11-21T01:30:00Z"))
        let harness = try await PayoutHarness.make(
            settings: ["PAYOUT_SCHEDULE": "02:15", "PAYOUT_TIME_ZONE": "Europe/Paris", "PAYOUT_SETTLEMENT_DELAY": "0s"], clock: clock)
        let executor = harness.parts.executor
        // 02:15 in Paris (UTC+1 in November) is 01:15 UTC: already past on the 21st, so the next is the 22nd.
        #expect(executor.nextOccurrence(of: try #require(TimeOfDay("02:15")), after: clock.now) == (try instant("2026-11-22T01:15:00Z")))
        try await harness.run { client in
            let put = try await harness.send(client, .put, "/v1/hosts/host_a", body: ["payout_account": "acct_a1"])
            #expect(put.status == .ok)
            let at = try instant("2026-11-20T10:00:00Z")
            try await harness.ledger([try PayoutHarness.confirmed(host: "host_a", amount: 10_000, confirmedAt: at, endsAt: at)])
            // Started after today's time: it catches up on the run of the previous day (2026-11-20 in Paris).
            let group = ServiceGroup(configuration: .init(services: [executor], gracefulShutdownSignals: [], logger: TestEnvironment.logger))
            let running = Task { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(15)
            while try await harness.count("SELECT count(*) FROM payout.runs WHERE status = 'completed'") == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            await group.triggerGracefulShutdown()
            try await running.value
            let runs = try await harness.postgres.query("SELECT run_date::text, cutoff FROM payout.runs")
            #expect(runs.count == 1)
            #expect(try runs.first?.decode(String.self, at: 0) == "2026-11-20")
            // The end of 2026-11-20 in Paris.
            #expect(try runs.first?.decode(Date.self, at: 1) == (try instant("2026-11-20T23:00:00Z")))
            #expect(try await harness.count("SELECT count(*) FROM payout.payouts") == 1)
        }
    }

    @Test("a run a runner left unfinished is finished by the executor without waiting to be asked")
    func resumesUnfinished() async throws {
        let clock = TestClock(try instant("2026-11-21T06:00:00Z"))
        let harness = try await PayoutHarness.make(settings: ["PAYOUT_SETTLEMENT_DELAY": "0s"], clock: clock)
        try await harness.run { client in
            let put = try await harness.send(client, .put, "/v1/hosts/host_a", body: ["payout_account": "acct_a1"])
            #expect(put.status == .ok)
            let at = try instant("2026-11-20T10:00:00Z")
            try await harness.ledger([try PayoutHarness.confirmed(host: "host_a", amount: 10_000, confirmedAt: at, endsAt: at)])
            let started = try await harness.parts.runner.start(try RunDate(parsing: "2026-11-20"))
            #expect(started.run.status == .running && started.run.phase == .planning)
            let group = ServiceGroup(
                configuration: .init(services: [harness.parts.executor], gracefulShutdownSignals: [], logger: TestEnvironment.logger))
            let running = Task { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(15)
            while try await harness.count("SELECT count(*) FROM payout.runs WHERE status = 'completed'") == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            // Idle between sweeps (60 s apart), it still stops at once.
            let stopping = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await running.value
            #expect(ContinuousClock.now - stopping < .seconds(5))
            #expect(try await harness.payouts(of: started.run.id) == ["host_a EUR 9000"])
        }
    }
}
