import Foundation
import Logging
import Messaging
import Metrics
import ServiceLifecycle
import SharedModel

/// The saga states as metrics, refreshed every `interval` from Postgres (so every replica reports
/// the same, whole picture): `saga_states{state}` (sagas in each state) and `sagas_overdue{state}`
/// (of those, the ones past their deadline: unpaid past the grace, or a refund past its bound, which
/// the deadline poller is about to act on). An alert on `saga_states{state="compensation_failed"}`
/// finds the sagas that wait for an operator's `saga resume`.
struct SagaStateGauges: Service {
    let operations: SagaOperations
    let logger: Logger
    var interval: Duration = .seconds(10)

    private static let totals = Dictionary(
        uniqueKeysWithValues: SagaState.allCases.map { ($0, Gauge(label: "saga_states", dimensions: [("state", $0.rawValue)])) })
    private static let overdue = Dictionary(
        uniqueKeysWithValues: SagaState.allCases.map { ($0, Gauge(label: "sagas_overdue", dimensions: [("state", $0.rawValue)])) })

    func run() async throws {
        await repeatUntilShutdown(every: interval, logger: logger, failure: "could not count sagas by state; retrying") {
            try await refresh()
        }
    }

    /// Reads the counts once and records them.
    func refresh() async throws {
        for (state, count) in try await operations.counts() {
            Self.totals[state]?.record(count.total)
            Self.overdue[state]?.record(count.overdue)
        }
    }
}
