import Foundation
import Messaging
import Postgres
import SharedModel

/// Why a saga decision is being applied: the correlation its events carry, the event that caused it
/// (its id is their causation; a `review` dead letter keeps the event itself).
struct SagaCause: Sendable {
    let correlationID: String
    let envelope: EventEnvelope?

    /// A payments-service event the coordinator consumed.
    static func event(_ envelope: EventEnvelope) -> SagaCause {
        SagaCause(correlationID: envelope.correlationID, envelope: envelope)
    }

    /// A request or a timer, with its own correlation.
    static func correlated(_ correlationID: String) -> SagaCause {
        SagaCause(correlationID: correlationID, envelope: nil)
    }
}

/// The saga moved between the read and the update; the transition is retried from a fresh read.
struct VersionConflict: Error {}

/// The booking saga in Postgres, inside the caller's transaction: reads a saga's snapshot and the
/// refund requests a provider's report may be about, and applies a ``SagaDecision`` in one pipelined
/// round trip whose saga updates are checked against the version the decision was made from (a
/// moved saga throws ``VersionConflict`` and the caller's transaction rolls back).
struct SagaRepository {
    let transaction: PostgresTransaction

    // MARK: Reading

    /// The booking and its saga; with `locking`, their rows stay locked until the transaction ends.
    func snapshot(of bookingID: BookingID, locking: Bool = false) throws -> SagaSnapshot? {
        // Two statements in one round trip: the second takes its own snapshot after the first holds its
        // locks, so it sees partial refunds that a transaction holding them before committed.
        let results = try transaction.pipeline([
            """
            SELECT s.state, s.version, b.amount, b.currency, b.payment_due_at, b.payment_provider_ref, b.event_id, b.hold_id, b.customer_id,
                   b.confirmed_at, s.attempts, e.host_id, e.starts_at, e.ends_at,
                   ARRAY(SELECT bs.seat_id FROM booking.booking_seats bs WHERE bs.booking_id = b.booking_id AND bs.released_at IS NULL
                         ORDER BY bs.seat_id),
                   b.client_id
            FROM booking.bookings b JOIN booking.sagas s USING (booking_id) JOIN booking.events e ON e.event_id = b.event_id
            WHERE b.booking_id = \(bookingID.uuid) \(unescaped: locking ? "FOR UPDATE OF b, s" : "")
            """,
            """
            SELECT COALESCE(sum(amount), 0)::int8 FROM booking.refund_requests
            WHERE booking_id = \(bookingID.uuid) AND purpose = 'partial' AND status <> 'failed'
            """,
        ])
        guard let row = results[0].first else { return nil }
        let stateText = try row.decode(String.self, at: 0)
        guard let state = SagaState(rawValue: stateText) else { throw SagaInconsistency("unknown saga state \(stateText)") }
        var snapshot = SagaSnapshot(
            bookingID: bookingID, state: state, version: try row.decode(Int64.self, at: 1),
            amount: Money(amount: try row.decode(Int64.self, at: 2), currency: try Currency(try row.decode(String.self, at: 3))),
            paymentDueAt: try row.decode(Date.self, at: 4), providerRef: try row.decode(String?.self, at: 5),
            eventID: EventID(try row.decode(UUID.self, at: 6)), holdID: HoldID(try row.decode(UUID.self, at: 7)),
            customerID: try CustomerID(parsing: try row.decode(String.self, at: 8)), hostID: try HostID(parsing: try row.decode(String.self, at: 11)),
            confirmedAt: try row.decode(Date?.self, at: 9), attempts: Int(try row.decode(Int32.self, at: 10)),
            eventStartsAt: try row.decode(Date.self, at: 12), eventEndsAt: try row.decode(Date.self, at: 13),
            seats: try row.decode([String].self, at: 14).map { try SeatID(parsing: $0) }, clientID: try row.decode(String?.self, at: 15))
        snapshot.partiallyRefunded = Money(amount: try results[1][0].decode(Int64.self, at: 0), currency: snapshot.amount.currency)
        return snapshot
    }

    /// The refund requests a provider's report may be about, locked: the one `refundID` names and the
    /// open requests of that payment for that amount (``SagaRefundRequest/matching(reportedAs:providerRef:amount:among:)``
    /// picks one).
    func refundRequests(reportedAs refundID: RefundID?, providerRef: String, amount: Money) throws -> [SagaRefundRequest] {
        let rows = try transaction.query(
            """
            SELECT r.refund_id, r.booking_id, r.purpose, r.provider_ref, r.amount, r.currency, r.status, r.requested_at,
                r.refund_id = (
                    SELECT c.refund_id FROM booking.refund_requests c WHERE c.booking_id = r.booking_id AND c.purpose = 'cancellation'
                    ORDER BY c.requested_at DESC, c.refund_id DESC LIMIT 1
                ) AS is_current
            FROM booking.refund_requests r
            WHERE r.refund_id = \(refundID?.uuid)
                OR (r.provider_ref = \(providerRef) AND r.amount = \(amount.amount) AND r.currency = \(amount.currency.code)
                    AND r.status = 'requested')
            ORDER BY r.requested_at, r.refund_id
            FOR UPDATE OF r
            """)
        return try rows.map { row in
            let purposeText = try row.decode(String.self, at: 2)
            let statusText = try row.decode(String.self, at: 6)
            guard let purpose = SagaRefundRequest.Purpose(rawValue: purposeText), let status = SagaRefundRequest.Status(rawValue: statusText) else {
                throw SagaInconsistency("unknown refund purpose \(purposeText) or status \(statusText)")
            }
            return SagaRefundRequest(
                refundID: RefundID(try row.decode(UUID.self, at: 0)), bookingID: try row.decode(UUID?.self, at: 1).map(BookingID.init),
                purpose: purpose, providerRef: try row.decode(String.self, at: 3),
                amount: Money(amount: try row.decode(Int64.self, at: 4), currency: try Currency(try row.decode(String.self, at: 5))),
                status: status, requestedAt: try row.decode(Date.self, at: 7), isCurrent: try row.decode(Bool?.self, at: 8) ?? false)
        }
    }

    /// Up to `limit` sagas whose deadline passed at `now` and that a deadline moves (awaiting payment,
    /// or a cancellation's refund pending), oldest deadline first, locked; sagas another transaction
    /// holds (e.g. a payment being applied) are skipped and seen next time.
    func dueSagas(at now: Date, limit: Int) throws -> [BookingID] {
        try transaction.query(
            """
            SELECT booking_id FROM booking.sagas
            WHERE deadline <= \(now) AND state IN ('awaiting_payment', 'cancel_requested', 'refund_pending')
            ORDER BY deadline
            LIMIT \(limit)
            FOR UPDATE SKIP LOCKED
            """
        ).map { BookingID(try $0.decode(UUID.self, at: 0)) }
    }

    /// The payment events of `bookingID` the payments service published (its outbox) that the saga
    /// coordinator never applied: no inbox row, not being retried, not dead-lettered. Oldest first.
    func unappliedPaymentEvents(of bookingID: BookingID) throws -> [EventEnvelope] {
        let consumer = SagaCoordinator.group
        return try transaction.query(
            """
            SELECT o.envelope::text FROM messaging.outbox o
            WHERE o.stream = \(Streams.payments) AND o.aggregate_id = \(bookingID.description) AND o.event_type LIKE 'payment.%'
                AND NOT EXISTS (SELECT 1 FROM messaging.inbox i WHERE i.consumer = \(consumer) AND i.event_id = o.event_id)
                AND NOT EXISTS (SELECT 1 FROM messaging.attempts a WHERE a.consumer = \(consumer) AND a.event_id = o.event_id)
                AND NOT EXISTS (SELECT 1 FROM messaging.dead_letters d WHERE d.consumer = \(consumer) AND d.event_id = o.event_id)
            ORDER BY o.position
            """
        ).map { try EventEnvelope(jsonData: Data(try $0.decode(String.self, at: 0).utf8)) }
    }

    /// Marks `envelope` processed by the saga coordinator at `now` (its inbox row); false when it already was.
    func claimInbox(_ envelope: EventEnvelope, at now: Date) throws -> Bool {
        try !transaction.query(
            """
            INSERT INTO messaging.inbox (consumer, event_id, processed_at) VALUES (\(SagaCoordinator.group), \(envelope.id.uuid), \(now))
            ON CONFLICT DO NOTHING RETURNING 1
            """
        ).isEmpty
    }

    // MARK: Applying

    /// Applies `decision` at `now`: the saga's moves (each checked against its version), the booking's
    /// status, timestamps and payment, the step log, the refund request and its completion, the outbox
    /// events and the `review` dead letter, in one round trip (the dead letter in a second). Returns
    /// the seats the moves released.
    @discardableResult
    func apply(_ decision: SagaDecision, cause: SagaCause, at now: Date) throws -> [SeatID] {
        guard !decision.isEmpty else { return [] }
        var statements: [PostgresStatement] = []
        var versionChecks: [Int] = []
        var releasedSeats: Int?
        if let bookingID = decision.bookingID {
            for transition in decision.transitions {
                versionChecks.append(statements.count)
                statements += Self.moving(bookingID, transition, at: now)
                if transition.releasesSeats {
                    releasedSeats = statements.count
                    statements.append(
                        """
                        UPDATE booking.booking_seats SET released_at = \(now)
                        WHERE booking_id = \(bookingID.uuid) AND released_at IS NULL RETURNING seat_id
                        """)
                }
            }
            if let intent = decision.paymentIntent {
                statements.append(
                    """
                    UPDATE booking.bookings SET payment_provider_ref = \(intent.providerRef), payment_client_secret = \(intent.clientSecret),
                        updated_at = \(now)
                    WHERE booking_id = \(bookingID.uuid) AND payment_provider_ref IS NULL
                    """)
            }
            statements += decision.steps.map { Self.logging($0, of: bookingID, at: now) }
        } else if !decision.transitions.isEmpty || !decision.steps.isEmpty || decision.paymentIntent != nil {
            throw SagaInconsistency("a saga decision that changes a booking without naming it")
        }
        if let request = decision.refundRequest {
            let event = request.event
            statements.append(
                """
                INSERT INTO booking.refund_requests
                    (refund_id, booking_id, purpose, reason, provider_ref, amount, currency, idempotency_key, status, requested_at, note)
                VALUES (\(event.refundID.uuid), \(event.bookingID?.uuid), \(request.purpose.rawValue), \(event.reason.rawValue),
                    \(event.providerRef), \(event.amount.amount), \(event.amount.currency.code), \(event.idempotencyKey), 'requested', \(now),
                    \(request.note))
                ON CONFLICT (refund_id) DO NOTHING
                """)
        }
        if let completion = decision.refundCompletion {
            statements.append(
                """
                UPDATE booking.refund_requests SET status = \(completion.status.rawValue),
                    provider_refund_ref = COALESCE(\(completion.providerRefundRef), provider_refund_ref), completed_at = \(now)
                WHERE refund_id = \(completion.refundID.uuid)
                """)
        }
        let results: [PostgresRows]
        if decision.events.isEmpty {
            results = statements.isEmpty ? [] : try transaction.pipeline(statements)
        } else {
            results =
                try Outbox.append(
                    decision.events, after: statements, producer: .booking, correlationID: cause.correlationID,
                    causationID: cause.envelope?.id.description, occurredAt: now, in: transaction
                ).results
        }
        guard versionChecks.allSatisfy({ !results[$0].isEmpty }) else { throw VersionConflict() }
        try recordReview(decision, cause: cause, at: now)
        guard let releasedSeats else { return [] }
        return try results[releasedSeats].map { try SeatID(parsing: try $0.decode(String.self, at: 0)) }
    }

    /// The decision's `review` dead letter, which keeps the event that caused it.
    private func recordReview(_ decision: SagaDecision, cause: SagaCause, at now: Date) throws {
        guard let error = decision.review else { return }
        guard let envelope = cause.envelope else { throw SagaInconsistency("a saga review without the event that caused it: \(error)") }
        try DeadLetterStore.record(
            kind: .review, stream: Streams.payments, consumer: SagaCoordinator.group, envelope: envelope, error: error, attempts: 1,
            firstFailedAt: now, clock: .fixed(now), in: transaction)
    }

    /// The statements of one move: the saga (version-checked: its result is empty when the saga
    /// moved meanwhile), the booking's status, timestamps and payment, and the step.
    private static func moving(_ bookingID: BookingID, _ transition: SagaDecision.Transition, at now: Date) -> [PostgresStatement] {
        func stamp(_ milestone: BookingMilestones) -> Date? { transition.milestones.contains(milestone) ? now : nil }
        return [
            """
            UPDATE booking.sagas SET state = \(transition.to.rawValue), version = version + 1, deadline = \(transition.deadline),
                last_error = \(transition.lastError), updated_at = \(now), attempts = attempts + \(transition.countsAttempt ? 1 : 0)
            WHERE booking_id = \(bookingID.uuid) AND version = \(transition.fromVersion)
            RETURNING 1
            """,
            """
            UPDATE booking.bookings SET status = \(transition.bookingStatus.rawValue), updated_at = \(now),
                confirmed_at = COALESCE(\(stamp(.confirmed)), confirmed_at),
                cancelled_at = COALESCE(\(stamp(.cancelled)), cancelled_at),
                expired_at = COALESCE(\(stamp(.expired)), expired_at),
                refund_requested_at = COALESCE(\(stamp(.refundRequested)), refund_requested_at),
                refunded_at = COALESCE(\(stamp(.refunded)), refunded_at),
                payment_provider_ref = COALESCE(\(transition.paymentReference), payment_provider_ref)
            WHERE booking_id = \(bookingID.uuid)
            """,
            logging(transition.step, of: bookingID, at: now),
        ]
    }

    /// The statement logging `step` of `bookingID` (with `gate`, only while it is open).
    static func logging(_ step: SagaStep, of bookingID: BookingID, at now: Date, onlyIf gate: OutboxCondition? = nil) -> PostgresStatement {
        """
        INSERT INTO booking.saga_steps (booking_id, step, kind, outcome, from_state, to_state, detail, occurred_at)
        SELECT \(bookingID.uuid), \(step.name.rawValue), \(step.kind.rawValue), \(step.outcome.rawValue), \(step.from?.rawValue),
            \(step.to?.rawValue), \(step.detail), \(now)
        \(gate?.whereOpen ?? "")
        """
    }
}
