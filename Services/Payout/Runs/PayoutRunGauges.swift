import Foundation
import Logging
import Messaging
import Metrics
import Postgres
import ServiceLifecycle

/// What the run gauges read from `payout.runs`.
struct RunGaugeValues: Sendable, Equatable {
    /// Runs in each status, every status present.
    var runs: [PayoutRun.Status: Int] = Dictionary(uniqueKeysWithValues: PayoutRun.Status.allCases.map { ($0, 0) })
    /// The cut-off of the latest completed run; nil before the first.
    var lastCompletedCutoff: Date?
    /// Whether the latest finished run (by date) failed.
    var lastFinishedFailed = false
    /// The reconciliation mismatches recorded on the latest finished run.
    var lastFinishedMismatches = 0
}

/// Payout runs as metrics, refreshed every `interval` from Postgres by every `payout serve` replica
/// (each reports the same, whole picture, whoever worked the runs: the API, the schedule, or a
/// `payout run` CronJob):
///
/// - `payout_runs{status}`: runs in each status (`running`, `completed`, `failed`);
/// - `payout_last_completed_run_cutoff_seconds`: the latest completed run's cut-off as a Unix time (0
///   before the first). A date's cut-off is the end of that day in `PAYOUT_TIME_ZONE`, so
///   `time() - payout_last_completed_run_cutoff_seconds` above 24 h plus a few hours means yesterday's
///   run has not completed;
/// - `payout_last_finished_run_failed`: 1 when the latest finished run (by date) failed, else 0;
/// - `payout_last_finished_run_mismatches`: the reconciliation mismatches recorded on that run.
struct PayoutRunGauges: Service {
    let postgres: PostgresClient
    let logger: Logger
    var interval: Duration = .seconds(30)

    private static let runs = Dictionary(
        uniqueKeysWithValues: PayoutRun.Status.allCases.map { ($0, Gauge(label: "payout_runs", dimensions: [("status", $0.rawValue)])) })
    private static let lastCompletedCutoff = Gauge(label: "payout_last_completed_run_cutoff_seconds")
    private static let lastFinishedFailed = Gauge(label: "payout_last_finished_run_failed")
    private static let lastFinishedMismatches = Gauge(label: "payout_last_finished_run_mismatches")

    func run() async throws {
        await repeatUntilShutdown(every: interval, logger: logger, failure: "could not read the payout runs for their gauges; retrying") {
            try await refresh()
        }
    }

    /// Reads the runs once, records the gauges, and returns what it recorded.
    @discardableResult
    func refresh() async throws -> RunGaugeValues {
        let values = try await postgres.withTransaction(readOnly: true) { try PayoutRunStore.gauges(in: $0) }
        for (status, count) in values.runs {
            Self.runs[status]?.record(count)
        }
        Self.lastCompletedCutoff.record(values.lastCompletedCutoff?.timeIntervalSince1970 ?? 0)
        Self.lastFinishedFailed.record(values.lastFinishedFailed ? 1 : 0)
        Self.lastFinishedMismatches.record(values.lastFinishedMismatches)
        return values
    }
}
