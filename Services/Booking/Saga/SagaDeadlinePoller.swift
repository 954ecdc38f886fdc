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
/// because nothing expires before the grace has passed. Before a booking expires, payment events of it
/// that the payments service published but the coordinator never applied (Redis lost the stream
/// entry) are applied first, so a paid booking confirms (or a late payment is refunded with a review)
/// instead of expiring silently. The clock is injected.
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

    /// Applies, in `transaction`, the payment events of `bookingID` that the payments service
    /// published (its outbox) and the saga coordinator never applied (no inbox row, not being
    /// retried, not dead-lettered), each with its inbox row, as the coordinator would have. Returns how
    /// many it applied and the seats to release in Redis afterwards.
    private func applyLostPaymentEvents(
        of bookingID: BookingID, in transaction: PostgresTransaction, at: Date
    ) throws -> (Int, [(EventID, HoldID, [SeatID])]) {
        let rows = try transaction.query(
            """
            SELECT o.envelope::text FROM messaging.outbox o
            WHERE o.stream = $1 AND o.aggregate_id = $2 AND o.event_type LIKE 'payment.%'
                AND NOT EXISTS (SELECT 1 FROM messaging.inbox i WHERE i.consumer = $3 AND i.event_id = o.event_id)
                AND NOT EXISTS (SELECT 1 FROM messaging.attempts a WHERE a.consumer = $3 AND a.event_id = o.event_id)
                AND NOT EXISTS (SELECT 1 FROM messaging.dead_letters d WHERE d.consumer = $3 AND d.event_id = o.event_id)
            ORDER BY o.position
            """,
            [Streams.payments, bookingID.description, SagaCoordinator.group])
        var applied = 0
        var released: [(EventID, HoldID, [SeatID])] = []
        for row in rows {
            let envelope = try EventEnvelope(jsonData: Data(try row.decode(String.self, at: 0).utf8))
            let inserted = try transaction.query(
                "INSERT INTO messaging.inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
                [SagaCoordinator.group, envelope.id.uuid])
            guard !inserted.isEmpty else { continue }
            if case .releaseSeats(let event, let hold, let seats) = try SagaTransaction(envelope: envelope, transaction: transaction, now: at).run() {
                released.append((event, hold, seats))
            }
            applied += 1
            logger.warning(
                "applied a payment event the saga coordinator never received before expiring its booking",
                metadata: ["booking_id": "\(bookingID)", "event_id": "\(envelope.id)", "event_type": "\(envelope.type)"])
        }
        return (applied, released)
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
                // A payment event the coordinator never received (Redis lost the stream entry) must not
                // let a paid booking expire: apply the booking's unapplied payment events first.
                let (lostEvents, followUps) = try applyLostPaymentEvents(of: bookingID, in: transaction, at: at)
                released += followUps
                var remaining = current
                if lostEvents > 0 {
                    guard let reloaded = try ledger.load(bookingID), reloaded.state == .awaitingPayment else { continue }
                    remaining = reloaded
                }
                let seats = try ledger.transition(
                    remaining, to: .expired, step: "booking_expired",
                    detail: "no payment by \(RFC3339.string(from: remaining.paymentDueAt)) and its grace", stamps: .expired,
                    releaseSeats: true, emitting: SagaEmission([BookingExpired(bookingID: bookingID)], correlationID: "saga-deadline-\(bookingID)"))
                released.append((remaining.eventID, remaining.holdID, seats))
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
