import Foundation
import Logging
import Messaging
import SharedModel

/// The booking saga's reactions to the payments service's events (consumer group `booking-saga` on
/// `stream:payments`): each event becomes a ``SagaInput``, decided by ``SagaDecider`` (DESIGN.md's
/// saga table; see its documentation) and applied by ``SagaRepository`` in one transaction with the
/// consumer's inbox row. The saga row's `version` guards against concurrent writers: a decision whose
/// saga moved meanwhile is made again from a fresh read. Seats released in Postgres are released in
/// Redis after the commit. Disputes are recorded beside the saga (``DisputeRecorder``).
struct SagaCoordinator: StreamHandler {
    static let group = "booking-saga"
    /// How often a decision is made again after losing a race with another writer.
    static let attempts = 16

    let runner: SagaRunner
    let holds: SeatHoldStore
    let logger: Logger
    let clock: WallClock

    func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws {
        if DisputeRecorder.handles(envelope.type) {
            let now = clock.now()
            try await context.commit { transaction in try DisputeRecorder.apply(envelope, at: now, in: transaction) }
            return
        }
        guard let input = try SagaInput(envelope) else { return }
        for attempt in 1...Self.attempts {
            do {
                let run = try await context.commit { transaction in
                    try self.runner.run(input, bookingID: input.bookingID, cause: .event(envelope), at: self.clock.now(), in: transaction)
                }
                if let released = run.released { await holds.releaseAfterCommit(released, logger: logger, correlationID: envelope.correlationID) }
                if let ended = run.endedReservation { await holds.releaseReservationAfterCommit(ended, logger: logger) }
                return
            } catch is VersionConflict where attempt < Self.attempts {
                continue
            }
        }
    }
}
