import Foundation
import Logging
import Messaging
import Postgres
import SharedModel

/// The booking saga's reactions to the payments service's events (consumer group `booking-saga` on
/// `stream:payments`), following DESIGN.md's saga table:
///
/// - `payment.intent_created`: the booking shows `payment: {provider_ref, client_secret}`.
/// - `payment.succeeded` for a booking awaiting payment, with its amount and currency, made at or
///   before `payment_due_at`: `confirmed` and `booking.confirmed`.
/// - a payment for an unknown booking, with another amount or currency, made after `payment_due_at`,
///   for a booking that is no longer awaiting payment, or a second payment of a confirmed booking:
///   `refund.requested` and a `review` dead letter; the booking is never confirmed by it.
/// - a final `payment.failed` while awaiting payment: `cancelled` (reason `payment_failed`), seats
///   released in Postgres and then in Redis; a non-final one (the customer may retry the same intent)
///   is a step in the log and the booking keeps waiting; after a success it changes nothing.
/// - `refund.succeeded` of a refund the saga asked for (`booking.refund_requests`, matched by refund id,
///   else by payment and amount), for that amount: `refunded` when it is a cancellation's refund, a
///   step when it is a compensation's; any other refund (made by hand at the provider, another amount)
///   is a `review` dead letter and moves nothing. `refund.failed` of the saga's current cancellation
///   refund: `compensation_failed`; of anything else: a `review` dead letter.
///
/// Every transition is one transaction (with the consumer's inbox row) that updates the booking and
/// the saga, appends the step log and the outbox events. The saga row's `version` guards against
/// concurrent writers: a transition whose version moved meanwhile is retried from a fresh read.
struct SagaCoordinator: StreamHandler {
    static let group = "booking-saga"

    let holds: SeatHoldStore
    let logger: Logger
    let now: @Sendable () -> Date

    func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws {
        for attempt in 1...16 {
            do {
                let followUp = try await context.commit { transaction in
                    try SagaTransaction(envelope: envelope, transaction: transaction, now: self.now()).run()
                }
                try await perform(followUp, envelope: envelope)
                return
            } catch is VersionConflict where attempt < 16 {
                continue
            }
        }
    }

    /// Redis work after the commit: Postgres is the truth, so a failure here is logged, and the cache is
    /// rebuilt from Postgres when it is found incomplete.
    private func perform(_ followUp: SagaFollowUp, envelope: EventEnvelope) async throws {
        guard case .releaseSeats(let event, let hold, let seats) = followUp else { return }
        do {
            try await holds.releaseBookedSeats(event: event, holdID: hold, seats: seats)
        } catch {
            logger.warning(
                "seats released in Postgres but not yet in Redis; the cache repairs from Postgres",
                metadata: ["event_id": "\(event)", "error": "\(error)", "correlation_id": "\(envelope.correlationID)"])
        }
    }
}

/// The saga row moved between the read and the update; the transition is retried.
struct VersionConflict: Error {}

/// The outbox events a transition appends in its round trip, with their correlation and cause.
struct SagaEmission {
    let events: [any DomainEvent]
    let correlationID: String
    let causationID: String?

    init(_ events: [any DomainEvent], correlationID: String, causationID: String? = nil) {
        self.events = events
        self.correlationID = correlationID
        self.causationID = causationID
    }
}

/// The lifecycle timestamps of a booking that a transition sets.
struct BookingStamps: OptionSet, Sendable {
    let rawValue: Int
    static let confirmed = BookingStamps(rawValue: 1 << 0)
    static let cancelled = BookingStamps(rawValue: 1 << 1)
    static let expired = BookingStamps(rawValue: 1 << 2)
    static let refundRequested = BookingStamps(rawValue: 1 << 3)
    static let refunded = BookingStamps(rawValue: 1 << 4)
}

/// What must happen after a transition committed.
enum SagaFollowUp: Sendable {
    case none
    case releaseSeats(event: EventID, hold: HoldID, seats: [SeatID])
}

/// One event applied inside one transaction.
struct SagaTransaction {
    let envelope: EventEnvelope
    let transaction: PostgresTransaction
    let now: Date
    private var ledger: SagaLedger { SagaLedger(transaction: transaction, now: now) }
    typealias Current = SagaLedger.Current

    private func load(_ bookingID: BookingID) throws -> Current? { try ledger.load(bookingID) }

    private func step(
        _ bookingID: BookingID, _ name: String, kind: String, outcome: String = "succeeded", from: SagaState?, to: SagaState?, detail: String
    ) -> PostgresStatement {
        ledger.step(bookingID, name, kind: kind, outcome: outcome, from: from, to: to, detail: detail)
    }

    private func transition(
        _ current: Current, to next: SagaState, step name: String, detail: String, stamps: BookingStamps, paymentReference: String? = nil,
        releaseSeats: Bool, lastError: String? = nil, emitting events: [any DomainEvent] = [], alsoWriting extra: [PostgresStatement] = []
    ) throws -> [SeatID] {
        try ledger.transition(
            current, to: next, step: name, detail: detail, stamps: stamps, paymentReference: paymentReference, releaseSeats: releaseSeats,
            lastError: lastError, emitting: SagaEmission(events, correlationID: envelope.correlationID, causationID: envelope.id.description),
            alsoWriting: extra)
    }

    func run() throws -> SagaFollowUp {
        switch envelope.type {
        case PaymentIntentCreated.eventType: try intentCreated(try envelope.decode(PaymentIntentCreated.self))
        case PaymentSucceeded.eventType: return try paymentSucceeded(try envelope.decode(PaymentSucceeded.self))
        case PaymentFailed.eventType: return try paymentFailed(try envelope.decode(PaymentFailed.self))
        case RefundSucceeded.eventType: try refundSucceeded(try envelope.decode(RefundSucceeded.self))
        case RefundFailed.eventType: try refundFailed(try envelope.decode(RefundFailed.self))
        default: break
        }
        return .none
    }

    // MARK: Handlers

    private func intentCreated(_ event: PaymentIntentCreated) throws {
        guard let current = try load(event.bookingID), current.state == .awaitingPayment, current.providerRef == nil else { return }
        try transaction.pipeline([
            PostgresStatement(
                """
                UPDATE booking.bookings SET payment_provider_ref = $2, payment_client_secret = $3, updated_at = $4
                WHERE booking_id = $1 AND payment_provider_ref IS NULL
                """,
                [event.bookingID.uuid, event.providerRef, event.clientSecret, now]),
            step(event.bookingID, "payment_intent_created", kind: "forward", from: nil, to: nil, detail: "\(event.provider) \(event.providerRef)"),
        ])
    }

    private func paymentSucceeded(_ payment: PaymentSucceeded) throws -> SagaFollowUp {
        guard let bookingID = payment.bookingID, let current = try load(bookingID) else {
            try compensate(payment, booking: nil, reason: .unknownBooking, why: "payment for no known booking")
            return .none
        }
        if current.confirmedAt != nil, current.providerRef == payment.providerRef {
            // The payment that confirmed the booking, reported again (e.g. by another source): applied once.
            try transaction.pipeline([
                step(bookingID, "payment_succeeded", kind: "forward", outcome: "skipped", from: current.state, to: nil, detail: "already applied")
            ])
            return .none
        }
        switch current.state {
        case .awaitingPayment:
            if payment.amount != current.amount {
                try compensate(payment, booking: current, reason: .amountMismatch, why: "paid \(payment.amount), the booking costs \(current.amount)")
            } else if payment.providerCreatedAt > current.paymentDueAt {
                try compensate(
                    payment, booking: current, reason: .latePayment,
                    why: "paid at \(RFC3339.string(from: payment.providerCreatedAt)), due by \(RFC3339.string(from: current.paymentDueAt))")
            } else {
                try confirm(current, payment: payment)
            }
        case .confirmed:
            try compensate(payment, booking: current, reason: .duplicatePayment, why: "a second payment of a confirmed booking")
        default:
            try compensate(payment, booking: current, reason: .latePayment, why: "payment for a booking that is \(current.state.rawValue)")
        }
        return .none
    }

    private func paymentFailed(_ failure: PaymentFailed) throws -> SagaFollowUp {
        guard let bookingID = failure.bookingID, let current = try load(bookingID) else { return .none }
        guard current.state == .awaitingPayment, current.providerRef == nil || current.providerRef == failure.providerRef else {
            try transaction.pipeline([
                step(
                    bookingID, "payment_failed", kind: "forward", outcome: "skipped", from: current.state, to: nil,
                    detail: "the booking is \(current.state.rawValue)")
            ])
            return .none
        }
        guard failure.isFinal else {
            // The customer may still pay with the same intent: the booking keeps waiting (a later success
            // confirms it, the deadline expires it).
            try transaction.pipeline([
                step(
                    bookingID, "payment_attempt_failed", kind: "forward", outcome: "failed", from: current.state, to: nil,
                    detail: "payment attempt failed, the payment may still succeed: \(failure.reason ?? "no reason given")")
            ])
            return .none
        }
        let seats = try transition(
            current, to: .cancelled, step: "booking_cancelled", detail: "payment failed: \(failure.reason ?? "no reason given")",
            stamps: .cancelled, releaseSeats: true,
            emitting: [BookingCancelled(bookingID: bookingID, reason: .paymentFailed, refundDue: .zero(current.amount.currency))])
        return .releaseSeats(event: current.eventID, hold: current.holdID, seats: seats)
    }

    /// A refund completes the saga only when it is the refund the saga asked for, for that amount: the
    /// request its refund id names (or, reported without one, an open request of that payment for that
    /// amount). A compensation's refund is recorded and leaves the saga where it is; a refund nobody
    /// asked for, or for another amount than asked, is a `review` dead letter.
    private func refundSucceeded(_ refund: RefundSucceeded) throws {
        let current = try refund.bookingID.flatMap(load)
        let reported = "\(refund.amount) of \(refund.providerRef)\(refund.providerRefundRef.map { " (\($0))" } ?? "")"
        guard let request = try ledger.refundRequest(reportedAs: refund.refundID, providerRef: refund.providerRef, amount: refund.amount) else {
            try review(
                current, step: "refund_unrequested", detail: "refunded \(reported), which no request of ours asked for",
                error: "a refund of \(reported) that the platform never requested")
            return
        }
        guard request.amount == refund.amount, request.providerRef == refund.providerRef else {
            try review(
                current, step: "refund_mismatched", detail: "refunded \(reported); refund \(request.refundID) asked for \(request.amount)",
                error: "refund \(request.refundID) asked for \(request.amount) of \(request.providerRef), the provider refunded \(reported)")
            return
        }
        guard request.status != .succeeded else {
            if let current {
                try transaction.pipeline([
                    step(
                        current.bookingID, "refund_succeeded", kind: "compensation", outcome: "skipped", from: current.state, to: nil,
                        detail: "refund \(request.refundID) already recorded")
                ])
            }
            return
        }
        let completing = ledger.completing(request, as: .succeeded, providerRefundRef: refund.providerRefundRef)
        if request.purpose == .cancellation, let current, current.bookingID == request.bookingID,
            [.cancelRequested, .refundPending, .compensationFailed].contains(current.state)
        {
            _ = try transition(
                current, to: .refunded, step: "refunded", detail: "refunded \(reported) (refund \(request.refundID))", stamps: .refunded,
                releaseSeats: false, alsoWriting: [completing])
            return
        }
        var statements = [completing]
        if let current {
            statements.append(
                step(
                    current.bookingID, "compensation_refunded", kind: "compensation", from: current.state, to: nil,
                    detail: "refunded \(reported) (\(request.purpose.rawValue) refund \(request.refundID))"))
        }
        try transaction.pipeline(statements)
    }

    /// A refund's failure fails the saga only when it is the saga's current request; any other failed
    /// refund (a compensation, an attempt an operator's resume replaced) is a `review` dead letter.
    private func refundFailed(_ refund: RefundFailed) throws {
        let current = try refund.bookingID.flatMap(load)
        let request = try ledger.refundRequest(reportedAs: refund.refundID, providerRef: refund.providerRef, amount: refund.amount)
        let completing = request.flatMap { $0.status == .requested ? ledger.completing($0, as: .failed) : nil }
        if let current, let request, request.purpose == .cancellation, request.isCurrent, current.bookingID == request.bookingID,
            [.cancelRequested, .refundPending].contains(current.state)
        {
            _ = try transition(
                current, to: .compensationFailed, step: "refund_failed", detail: refund.error ?? "refused", stamps: [],
                releaseSeats: false, lastError: refund.error ?? "refund refused", alsoWriting: completing.map { [$0] } ?? [])
            return
        }
        var statements = completing.map { [$0] } ?? []
        if let current {
            statements.append(
                step(
                    current.bookingID, "compensation_refund_failed", kind: "compensation", outcome: "failed", from: current.state, to: nil,
                    detail: refund.error ?? "refused"))
        }
        if !statements.isEmpty { try transaction.pipeline(statements) }
        let which = request.map { "\($0.purpose.rawValue) refund \($0.refundID)" } ?? "a refund the platform never requested"
        try DeadLetterStore.record(
            kind: .review, stream: Streams.payments, consumer: SagaCoordinator.group, envelope: envelope,
            error: "\(which) of \(refund.amount) for \(refund.providerRef) was refused: \(refund.error ?? "no reason given")",
            attempts: 1, firstFailedAt: now, in: transaction)
    }

    /// A step in the booking's log (when there is a booking) and a `review` dead letter.
    private func review(_ current: Current?, step name: String, detail: String, error: String) throws {
        if let current {
            try transaction.pipeline([
                step(current.bookingID, name, kind: "compensation", outcome: "skipped", from: current.state, to: nil, detail: detail)
            ])
        }
        try DeadLetterStore.record(
            kind: .review, stream: Streams.payments, consumer: SagaCoordinator.group, envelope: envelope, error: error, attempts: 1,
            firstFailedAt: now, in: transaction)
    }

    // MARK: Transitions

    private func confirm(_ current: Current, payment: PaymentSucceeded) throws {
        guard !current.seats.isEmpty else { throw InventoryCorrupted(description: "booking \(current.bookingID) awaits payment without seats") }
        let confirmed = BookingConfirmed(
            bookingID: current.bookingID, eventID: current.eventID, hostID: current.hostID, customerID: current.customerID,
            seatIDs: current.seats, amount: current.amount, providerRef: payment.providerRef, confirmedAt: now, eventEndsAt: current.eventEndsAt)
        _ = try transition(
            current, to: .confirmed, step: "booking_confirmed", detail: "paid \(payment.amount) (\(payment.provider) \(payment.providerRef))",
            stamps: .confirmed, paymentReference: payment.providerRef, releaseSeats: false, emitting: [confirmed])
    }

    /// A payment the booking must not keep: `refund.requested` (its key derived from the payment
    /// event, so a redelivery asks for the same refund) and a `review` dead letter naming the reason.
    private func compensate(_ payment: PaymentSucceeded, booking current: Current?, reason: RefundReason, why: String) throws {
        let request = RefundRequested(
            refundID: RefundID(), bookingID: current?.bookingID ?? payment.bookingID, providerRef: payment.providerRef, amount: payment.amount,
            reason: reason, idempotencyKey: "refund-\(payment.provider)-\(payment.paymentEventID)")
        try Outbox.append(
            request, producer: .booking, correlationID: envelope.correlationID, causationID: envelope.id.description, occurredAt: now,
            in: transaction)
        var statements = [ledger.recording(request, purpose: .compensation)]
        if let current {
            statements.append(
                step(current.bookingID, "refund_requested", kind: "compensation", from: current.state, to: nil, detail: "\(reason.rawValue): \(why)"))
        }
        try transaction.pipeline(statements)
        try DeadLetterStore.record(
            kind: .review, stream: Streams.payments, consumer: SagaCoordinator.group, envelope: envelope,
            error: "\(reason.rawValue): \(why); refund \(request.refundID) of \(payment.amount) requested", attempts: 1, firstFailedAt: now,
            in: transaction)
    }

}

/// Reading and moving sagas inside one transaction: shared by the coordinator's reactions and the
/// deadline poller.
struct SagaLedger {
    let transaction: PostgresTransaction
    let now: Date

    /// The booking and its saga as read at the start of the transaction.
    struct Current {
        let bookingID: BookingID
        private(set) var state: SagaState
        private(set) var version: Int64
        let amount: Money
        let paymentDueAt: Date
        let providerRef: String?
        let eventID: EventID
        let holdID: HoldID
        let customerID: CustomerID
        let confirmedAt: Date?
        let attempts: Int
        let hostID: HostID
        let eventEndsAt: Date
        /// The seats the booking still holds (not released), in order.
        let seats: [SeatID]

        /// The saga as it is after a transition to `next` in the same transaction.
        func advanced(to next: SagaState) -> Current {
            var copy = self
            copy.state = next
            copy.version = version + 1
            return copy
        }
    }

    /// Moves the saga from `current` to `next` if its version has not moved (else ``VersionConflict``),
    /// updating the booking's status, the lifecycle timestamps in `stamps` (to now) and, when given,
    /// its payment reference, logging the step and appending `emission`'s events to the outbox, with
    /// `extra` statements in the same round trip. The saga's deadline becomes `deadline` (none by
    /// default); `countsAttempt` adds one to its attempts (an operator's resume). Returns the seats
    /// released when `releaseSeats`.
    ///
    /// Everything goes to Postgres in one pipelined round trip; when the version check finds the
    /// saga moved, ``VersionConflict`` is thrown and the caller's transaction (with whatever the
    /// pipeline wrote) rolls back.
    func transition(
        _ current: Current, to next: SagaState, step name: String, detail: String, stamps: BookingStamps, paymentReference: String? = nil,
        releaseSeats: Bool, lastError: String? = nil, deadline: Date? = nil, countsAttempt: Bool = false, emitting emission: SagaEmission? = nil,
        alsoWriting extra: [PostgresStatement] = []
    ) throws -> [SeatID] {
        var saga = BookingSaga(state: current.state)
        try saga.transition(to: next)
        var statements = [
            PostgresStatement(
                """
                UPDATE booking.sagas SET state = $3, version = version + 1, deadline = $6, last_error = $4, updated_at = $5,
                    attempts = attempts + CASE WHEN $7 THEN 1 ELSE 0 END
                WHERE booking_id = $1 AND version = $2
                RETURNING 1
                """,
                [current.bookingID.uuid, current.version, next.rawValue, lastError, now, deadline, countsAttempt]),
            PostgresStatement(
                """
                UPDATE booking.bookings SET status = $2, updated_at = $3,
                    confirmed_at = CASE WHEN $4 THEN $3 ELSE confirmed_at END,
                    cancelled_at = CASE WHEN $5 THEN $3 ELSE cancelled_at END,
                    expired_at = CASE WHEN $6 THEN $3 ELSE expired_at END,
                    refund_requested_at = CASE WHEN $7 THEN $3 ELSE refund_requested_at END,
                    refunded_at = CASE WHEN $8 THEN $3 ELSE refunded_at END,
                    payment_provider_ref = COALESCE($9, payment_provider_ref)
                WHERE booking_id = $1
                """,
                [
                    current.bookingID.uuid, saga.bookingStatus.rawValue, now, stamps.contains(.confirmed), stamps.contains(.cancelled),
                    stamps.contains(.expired), stamps.contains(.refundRequested), stamps.contains(.refunded), paymentReference,
                ]),
            step(current.bookingID, name, kind: "forward", from: current.state, to: next, detail: detail),
        ]
        if releaseSeats {
            statements.append(
                PostgresStatement(
                    "UPDATE booking.booking_seats SET released_at = $2 WHERE booking_id = $1 AND released_at IS NULL RETURNING seat_id",
                    [current.bookingID.uuid, now]))
        }
        // After the statements whose results are read by position.
        statements += extra
        let results: [PostgresRows]
        if let emission, !emission.events.isEmpty {
            results =
                try Outbox.append(
                    emission.events, after: statements, producer: .booking, correlationID: emission.correlationID,
                    causationID: emission.causationID, occurredAt: now, in: transaction
                ).results
        } else {
            results = try transaction.pipeline(statements)
        }
        guard !results[0].isEmpty else { throw VersionConflict() }
        guard releaseSeats else { return [] }
        return try results[3].map { try SeatID(parsing: try $0.decode(String.self, at: 0)) }
    }

    /// The default of `REFUND_PENDING_BOUND`: a refund still unconfirmed an hour after it was asked
    /// for needs a person (the provider answers a refund at once and its webhook follows within
    /// seconds; the provider worker's retries of a failing call end well within the hour).
    static let defaultRefundPendingBound: Duration = .seconds(3600)

    /// Moves `current` (`cancel_requested`, or `compensation_failed` on an operator's resume) to
    /// `refund_pending` with the deadline `now + bound`, emitting `events` (e.g. `booking.cancelled`)
    /// and the `refund.requested` of the booking's payment, in full, in the same round trip. Returns
    /// that request.
    @discardableResult
    func requestRefund(
        _ current: Current, reason: RefundReason, idempotencyKey: String, lookupExisting: Bool, bound: Duration, step name: String,
        detail: String, countsAttempt: Bool = false, emitting events: [any DomainEvent] = [], correlationID: String
    ) throws -> RefundRequested {
        guard let providerRef = current.providerRef else {
            throw InventoryCorrupted(description: "booking \(current.bookingID) is refunded but names no payment")
        }
        let request = RefundRequested(
            refundID: RefundID(), bookingID: current.bookingID, providerRef: providerRef, amount: current.amount, reason: reason,
            idempotencyKey: idempotencyKey, lookupExisting: lookupExisting)
        _ = try transition(
            current, to: .refundPending, step: name, detail: detail, stamps: [], releaseSeats: false,
            deadline: now.addingTimeInterval(Double(bound.wholeMilliseconds) / 1000), countsAttempt: countsAttempt,
            emitting: SagaEmission(events + [request], correlationID: correlationID), alsoWriting: [recording(request, purpose: .cancellation)])
        return request
    }

    // MARK: Refund requests

    /// Records a refund the saga asks for (`booking.refund_requests`), so its outcome can be matched.
    func recording(_ request: RefundRequested, purpose: RefundRequestRecord.Purpose) -> PostgresStatement {
        PostgresStatement(
            """
            INSERT INTO booking.refund_requests
                (refund_id, booking_id, purpose, reason, provider_ref, amount, currency, idempotency_key, status, requested_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'requested', $9)
            ON CONFLICT (refund_id) DO NOTHING
            """,
            [
                request.refundID.uuid, request.bookingID?.uuid, purpose.rawValue, request.reason.rawValue, request.providerRef, request.amount.amount,
                request.amount.currency.code, request.idempotencyKey, now,
            ])
    }

    /// The refund request a provider's report is about, locked: the one its refund id names, else the
    /// oldest open request of that payment for that amount (a report that carries no id of ours).
    func refundRequest(reportedAs refundID: RefundID?, providerRef: String, amount: Money) throws -> RefundRequestRecord? {
        if let refundID,
            let row = try transaction.query(RefundRequestRecord.select + " WHERE r.refund_id = $1 FOR UPDATE OF r", [refundID.uuid]).first
        {
            return try RefundRequestRecord(row)
        }
        let rows = try transaction.query(
            RefundRequestRecord.select + """
                 WHERE r.provider_ref = $1 AND r.amount = $2 AND r.currency = $3 AND r.status = 'requested'
                ORDER BY r.requested_at, r.refund_id LIMIT 1 FOR UPDATE OF r
                """,
            [providerRef, amount.amount, amount.currency.code])
        return try rows.first.map(RefundRequestRecord.init)
    }

    /// Marks `request` succeeded or failed (with the provider's refund reference, when known).
    func completing(_ request: RefundRequestRecord, as status: RefundRequestRecord.Status, providerRefundRef: String? = nil) -> PostgresStatement {
        PostgresStatement(
            """
            UPDATE booking.refund_requests SET status = $2, provider_refund_ref = COALESCE($3, provider_refund_ref), completed_at = $4
            WHERE refund_id = $1
            """,
            [request.refundID.uuid, status.rawValue, providerRefundRef, now])
    }

    // MARK: Reading and logging

    func load(_ bookingID: BookingID) throws -> Current? {
        let rows = try transaction.query(
            """
            SELECT s.state, s.version, b.amount, b.currency, b.payment_due_at, b.payment_provider_ref, b.event_id, b.hold_id, b.customer_id,
                   b.confirmed_at, s.attempts, e.host_id, e.ends_at,
                   ARRAY(SELECT bs.seat_id FROM booking.booking_seats bs WHERE bs.booking_id = b.booking_id AND bs.released_at IS NULL
                         ORDER BY bs.seat_id)
            FROM booking.bookings b JOIN booking.sagas s USING (booking_id) JOIN booking.events e ON e.event_id = b.event_id
            WHERE b.booking_id = $1
            """,
            [bookingID.uuid])
        guard let row = rows.first else { return nil }
        let stateText = try row.decode(String.self, at: 0)
        guard let state = SagaState(rawValue: stateText) else { throw InventoryCorrupted(description: "unknown saga state \(stateText)") }
        return Current(
            bookingID: bookingID, state: state, version: try row.decode(Int64.self, at: 1),
            amount: Money(amount: try row.decode(Int64.self, at: 2), currency: try Currency(try row.decode(String.self, at: 3))),
            paymentDueAt: try row.decode(Date.self, at: 4), providerRef: try row.decode(String?.self, at: 5),
            eventID: EventID(try row.decode(UUID.self, at: 6)), holdID: HoldID(try row.decode(UUID.self, at: 7)),
            customerID: try CustomerID(parsing: try row.decode(String.self, at: 8)), confirmedAt: try row.decode(Date?.self, at: 9),
            attempts: Int(try row.decode(Int32.self, at: 10)), hostID: try HostID(parsing: try row.decode(String.self, at: 11)),
            eventEndsAt: try row.decode(Date.self, at: 12), seats: try row.decode([String].self, at: 13).map { try SeatID(parsing: $0) })
    }

    func step(
        _ bookingID: BookingID, _ name: String, kind: String, outcome: String = "succeeded", from: SagaState?, to: SagaState?, detail: String
    ) -> PostgresStatement {
        PostgresStatement(
            """
            INSERT INTO booking.saga_steps (booking_id, step, kind, outcome, from_state, to_state, detail, occurred_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            [bookingID.uuid, name, kind, outcome, from?.rawValue, to?.rawValue, detail, now])
    }
}
