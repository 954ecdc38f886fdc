import Foundation
import Logging
import Messaging
import Postgres
import ServiceLifecycle
import SharedModel

/// Acts on sagas whose deadline passed:
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
/// because nothing expires before the grace has passed. The clock is injected.
struct SagaDeadlinePoller: Service {
    let postgres: PostgresClient
    let holds: SeatHoldStore
    let logger: Logger
    var interval: Duration = .seconds(1)
    var batchSize = 100
    var now: @Sendable () -> Date = { Date() }

    func run() async throws {
        await repeatUntilShutdown(every: interval, logger: logger, failure: "could not expire overdue bookings; retrying") {
            while try await expireDue() == batchSize, !Task.isCancelled {}
        }
    }

    /// Acts on up to `batchSize` overdue sagas in one transaction; returns how many.
    @discardableResult
    func expireDue() async throws -> Int {
        let at = now()
        let batchSize = self.batchSize
        let (handled, expired) = try await postgres.withTransaction { transaction -> (Int, [(EventID, HoldID, [SeatID])]) in
            let due = try transaction.query(
                """
                SELECT booking_id FROM booking.sagas
                WHERE deadline <= $1 AND state IN ('awaiting_payment', 'cancel_requested', 'refund_pending')
                ORDER BY deadline
                LIMIT $2
                FOR UPDATE SKIP LOCKED
                """,
                [at, batchSize])
            let ledger = SagaLedger(transaction: transaction, now: at)
            var released: [(EventID, HoldID, [SeatID])] = []
            for row in due {
                let bookingID = BookingID(try row.decode(UUID.self, at: 0))
                guard let current = try ledger.load(bookingID) else { continue }
                if [.cancelRequested, .refundPending].contains(current.state) {
                    let reason = "no refund.succeeded or refund.failed within the refund's bound"
                    _ = try ledger.transition(
                        current, to: .compensationFailed, step: "refund_overdue", detail: reason, stamps: [], releaseSeats: false,
                        lastError: reason)
                    continue
                }
                guard current.state == .awaitingPayment else { continue }
                let seats = try ledger.transition(
                    current, to: .expired, step: "booking_expired",
                    detail: "no payment by \(RFC3339.string(from: current.paymentDueAt)) and its grace", stamps: .expired,
                    releaseSeats: true, emitting: SagaEmission([BookingExpired(bookingID: bookingID)], correlationID: "saga-deadline-\(bookingID)"))
                released.append((current.eventID, current.holdID, seats))
            }
            return (due.count, released)
        }
        for (event, hold, seats) in expired {
            do {
                try await holds.releaseBookedSeats(event: event, holdID: hold, seats: seats)
            } catch {
                logger.warning(
                    "seats released in Postgres but not yet in Redis; the cache repairs from Postgres",
                    metadata: ["event_id": "\(event)", "error": "\(error)"])
            }
        }
        if !expired.isEmpty { logger.info("expired overdue bookings", metadata: ["count": "\(expired.count)"]) }
        if handled > expired.count {
            logger.warning("refunds overdue: sagas now compensation_failed", metadata: ["count": "\(handled - expired.count)"])
        }
        return handled
    }
}
