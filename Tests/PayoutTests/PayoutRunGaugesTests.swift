import Foundation
import Postgres
import ServiceKit
import TestSupport
import Testing

@testable import Payout

@Suite("Payout run gauges: runs by status, the latest completed cut-off, the latest finished run's failure")
struct PayoutRunGaugesTests {
    @Test("before any run, after a run that failed reconciliation, after a completed run, and beside one still running")
    func gaugesFollowTheRuns() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            let gauges = PayoutRunGauges(postgres: harness.parts.runner.postgres, logger: TestEnvironment.logger)
            var expected = RunGaugeValues()
            #expect(try await gauges.refresh() == expected)

            try await harness.twoSettledHosts(client)
            let failed = try await harness.runPayoutWithMismatch("2026-11-20")
            #expect(failed.status == .failed)
            expected.runs[.failed] = 1
            expected.lastFinishedFailed = true
            expected.lastFinishedMismatches = failed.mismatches.count
            #expect(try await gauges.refresh() == expected)
            #expect(expected.lastFinishedMismatches == 4)

            harness.clock.set(try instant("2026-11-22T06:00:00Z"))
            let completed = try await harness.runPayout("2026-11-21")
            #expect(completed.status == .completed)
            expected.runs[.completed] = 1
            expected.lastCompletedCutoff = try instant("2026-11-22T00:00:00Z")
            expected.lastFinishedFailed = false
            expected.lastFinishedMismatches = 0
            #expect(try await gauges.refresh() == expected)

            // A later run still running is not "finished": the latest finished one is still the completed one.
            harness.clock.set(try instant("2026-11-23T06:00:00Z"))
            _ = try await harness.parts.runner.start(try RunDate(parsing: "2026-11-22"))
            expected.runs[.running] = 1
            #expect(try await gauges.refresh() == expected)

            let exposition = String(decoding: PlatformMetrics.exposition(), as: UTF8.self)
            for name in [
                "payout_runs{status=\"running\"}", "payout_last_completed_run_cutoff_seconds ", "payout_last_finished_run_failed ",
                "payout_last_finished_run_mismatches ", "payout_reconciliation_failures_total ", "payout_runs_total{status=\"failed\"}",
            ] {
                #expect(exposition.contains(name), "\(name) is not exposed")
            }
        }
    }
}
