import Foundation
import Logging
import Messaging
import Postgres
import ServiceLifecycle
import SharedModel

/// Acts on sagas whose deadline passed (``SagaInput/deadlinePassed``, decided by ``SagaDecider``):
///
/// - awaiting payment past `payment_due_at` + grace: `expired`, seats released in Postgres (then in
///   Redis), `booking.expired`;
/// - a cancellation's refund still unconfirmed past its bound (`REFUND_PENDING_BOUND` after it was
///   requested): `compensation_failed` with the reason as `last_error`, for an operator's
///   `saga resume`.
///
/// Due sagas are found through the deadline index and locked with `FOR UPDATE SKIP LOCKED`, so
/// several instances (or a concurrent payment) never expire one booking twice: a payment being
/// applied holds the row, the poller skips it, and sees it confirmed next time. A payment whose
/// provider time is at or before `payment_due_at` but arrives during the grace still confirms,
/// because nothing expires before the grace has passed. Before a booking expires, payment events of it
/// that the payments service published but the coordinator never applied (Redis lost the stream
/// entry) are applied first, so a paid booking confirms (or a late payment is refunded with a review)
/// instead of expiring silently.
struct SagaDeadlinePoller: Service {
    let postgres: PostgresClient
    let runner: SagaRunner
    let holds: SeatHoldStore
    let logger: Logger
    var clock: WallClock = .system
    var interval: Duration = .seconds(1)
    var batchSize = 100

    func run() async throws {
        await repeatUntilShutdown(every: interval, logger: logger, failure: "could not expire overdue bookings; retrying") {
            while try await expireDue() == batchSize, !Task.isCancelled {}
        }
    }

    /// What one pass did.
    private struct Pass: Sendable {
        var due = 0
        var expired = 0
        var overdueRefunds = 0
        var released: [SeatRelease] = []
        var endedReservations: [HeldSeatsReservation] = []
    }

    /// Acts on up to `batchSize` overdue sagas in one transaction; returns how many were due.
    @discardableResult
    func expireDue() async throws -> Int {
        let at = clock.now()
        let (batchSize, runner, logger) = (self.batchSize, self.runner, self.logger)
        let pass = try await postgres.withTransaction { transaction -> Pass in
            let repository = SagaRepository(transaction: transaction)
            var pass = Pass()
            let due = try repository.dueSagas(at: at, limit: batchSize)
            pass.due = due.count
            for bookingID in due {
                if try repository.snapshot(of: bookingID)?.state == .awaitingPayment {
                    // A payment event the coordinator never received (Redis lost the stream entry) must not
                    // let a paid booking expire: apply the booking's unapplied payment events first.
                    for envelope in try repository.unappliedPaymentEvents(of: bookingID) where try repository.claimInbox(envelope, at: at) {
                        let run = try runner.run(envelope, at: at, in: transaction)
                        if let released = run?.released { pass.released.append(released) }
                        if let ended = run?.endedReservation { pass.endedReservations.append(ended) }
                        logger.warning(
                            "applied a payment event the saga coordinator never received before expiring its booking",
                            metadata: ["booking_id": "\(bookingID)", "event_id": "\(envelope.id)", "event_type": "\(envelope.type)"])
                    }
                }
                let run = try runner.run(
                    .deadlinePassed, bookingID: bookingID, cause: .correlated("saga-deadline-\(bookingID)"), at: at, in: transaction)
                switch run.decision.finalState {
                case .expired: pass.expired += 1
                case .compensationFailed: pass.overdueRefunds += 1
                default: break
                }
                if let released = run.released { pass.released.append(released) }
                if let ended = run.endedReservation { pass.endedReservations.append(ended) }
            }
            return pass
        }
        for release in pass.released {
            await holds.releaseAfterCommit(release, logger: logger)
        }
        for ended in pass.endedReservations {
            await holds.releaseReservationAfterCommit(ended, logger: logger)
        }
        if pass.expired > 0 { logger.info("expired overdue bookings", metadata: ["count": "\(pass.expired)"]) }
        if pass.overdueRefunds > 0 {
            logger.warning("refunds overdue: sagas now compensation_failed", metadata: ["count": "\(pass.overdueRefunds)"])
        }
        return pass.due
    }
}
