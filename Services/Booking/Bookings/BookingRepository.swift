import Foundation
import Messaging
import Postgres
import SharedModel

/// An idempotency key as a request presents it: who (client), what operation (scope), which key,
/// and a digest of the request it was first used with.
struct IdempotencyClaim: Sendable {
    let client: String
    let scope: String
    let key: String
    let requestHash: [UInt8]
    /// Keys older than this are forgotten (DESIGN.md: 24 h).
    let expiresAt: Date
    let now: Date
}

/// A response stored under an idempotency key (2xx and 4xx only).
struct StoredResponse: Sendable, Equatable {
    let status: Int
    let body: [UInt8]
    let requestHash: [UInt8]
}

/// Bookings and their sagas in the `booking` schema.
protocol BookingRepository: Sendable {
    /// Creates the booking, its seats, its saga's first row and its events, and stores `response`
    /// under the idempotency key, all in one transaction. When the key already has a response (a
    /// concurrent request with the same key committed first), nothing is created and that response
    /// is returned instead.
    func create(_ booking: NewBooking, response: StoredResponse, claim: IdempotencyClaim) async throws -> CreateOutcome
    /// Stores `response` under the key unless one is stored already; returns what is stored and
    /// whether it was stored now.
    func remember(_ response: StoredResponse, claim: IdempotencyClaim) async throws -> (response: StoredResponse, isNew: Bool)
    func booking(_ id: BookingID) async throws -> Booking?
    /// A customer's bookings, newest first, after `cursor`; only those `client` created, unless
    /// `client` is nil (the admin). With the cursor of the next page (nil on the last).
    func bookings(
        of customer: CustomerID, client: String?, after cursor: ListCursor?, limit: Int
    ) async throws
        -> (bookings: [Booking], nextCursor: String?)
    /// Cancels a booking (see ``CancelOutcome``); `.notFound` when `client` (nil: the admin) did not create it.
    func cancel(
        _ id: BookingID, reason: CancellationReason, customer: CustomerID?, client: String?, correlationID: String, at now: Date
    ) async throws -> CancelOutcome
}

enum CreateOutcome: Sendable {
    case created(Booking)
    case replayed(StoredResponse)
    /// Another booking took some of the seats first (the database's guard): these.
    case seatsTaken([SeatID])
    /// The hold already became a booking (the database's guard).
    case holdBooked
    /// The event was cancelled (the database's guard, migration 0012).
    case eventCancelled
}

enum CancelOutcome: Sendable {
    /// Cancelled now; the seats it released in Postgres must leave Redis.
    case cancelled(Booking, released: SeatRelease?)
    /// It was cancelled before; nothing changed.
    case alreadyCancelled(Booking)
    case notFound
    case notOwner
    /// The saga is in a state this operation cannot cancel from.
    case notCancellable(SagaState)
}

/// ``BookingRepository`` on Postgres.
struct PostgresBookingRepository: BookingRepository {
    let postgres: PostgresClient
    /// Decides a cancellation's saga moves (with its refund policy and bound).
    var runner = SagaRunner(decider: SagaDecider())

    /// One transaction sent whole, in one round trip on a shared connection: the key's lock, the
    /// response stored under it (which opens a gate when there is none), then the booking's writes,
    /// each conditioned on the gate, so a replay writes nothing.
    func create(_ new: NewBooking, response: StoredResponse, claim: IdempotencyClaim) async throws -> CreateOutcome {
        do {
            let gate = OutboxCondition(token: new.id.uuid.uuidString)
            let claiming = Self.claiming(claim, opening: gate)
            let results = try await postgres.sharedTransaction(claiming + Self.inserting(new, storing: response, claim: claim, onlyIf: gate))
            if let stored = try Self.stored(results[claiming.count - 1]) { return .replayed(stored) }
            return .created(new.booking)
        } catch let error as PostgresError where error.code == .uniqueViolation && error.constraint == "booking_seats_active_once" {
            // The database's guard: another booking took one of these seats first.
            return .seatsTaken(try await seatsInActiveBookings(event: new.event.id, among: new.seatIDs))
        } catch let error as PostgresError where error.code == .uniqueViolation && error.constraint == "bookings_hold_id_key" {
            return .holdBooked
        } catch let error as PostgresError where error.code == .checkViolation && error.constraint == "event_not_cancelled" {
            return .eventCancelled
        }
    }

    /// The booking, its seats, the saga's first row and step, the response under the idempotency key,
    /// and the events: each statement runs only while `gate` is open.
    private static func inserting(
        _ new: NewBooking, storing response: StoredResponse, claim: IdempotencyClaim, onlyIf gate: OutboxCondition
    ) throws -> [PostgresStatement] {
        let booking = new.booking
        let requested = BookingRequested(
            bookingID: new.id, eventID: new.event.id, hostID: new.event.hostID, customerID: new.customerID, seatIDs: new.seatIDs,
            amount: new.amount, paymentDueAt: new.paymentDueAt)
        let next: any DomainEvent =
            new.isFree
            ? BookingConfirmed(
                bookingID: new.id, eventID: new.event.id, hostID: new.event.hostID, customerID: new.customerID, seatIDs: new.seatIDs,
                amount: new.amount, providerRef: nil, confirmedAt: new.createdAt, eventEndsAt: new.event.endsAt)
            : PaymentRequested(bookingID: new.id, amount: new.amount, customerID: new.customerID, idempotencyKey: "booking-\(new.id)-payment")
        let prices = new.seatIDs.map { new.event.prices[$0] ?? 0 }
        let firstStep = SagaStep(
            new.isFree ? .bookingConfirmed : .bookingRequested, kind: .forward, from: nil, to: booking.sagaState,
            detail: new.isFree ? "free: nothing to pay" : "payment requested")
        let events = try Outbox.drafts(
            [requested, next], producer: .booking, correlationID: new.correlationID, occurredAt: new.createdAt)
        return [
            """
            INSERT INTO booking.bookings (booking_id, event_id, customer_id, hold_id, status, amount, currency, payment_due_at,
                created_at, updated_at, confirmed_at, client_id)
            SELECT \(new.id.uuid), \(new.event.id.uuid), \(new.customerID.rawValue), \(new.holdID.uuid), \(booking.status.rawValue),
                \(new.amount.amount), \(new.amount.currency.code), \(new.paymentDueAt), \(new.createdAt), \(new.createdAt),
                \(booking.confirmedAt), \(new.clientID)
            \(gate.whereOpen)
            """,
            """
            INSERT INTO booking.booking_seats (booking_id, event_id, seat_id, price)
            SELECT \(new.id.uuid), \(new.event.id.uuid), seat.id, seat.price
            FROM unnest(\(new.seatIDs.map(\.rawValue))::text[], \(prices)::int8[]) AS seat (id, price)
            \(gate.whereOpen)
            """,
            """
            INSERT INTO booking.sagas (booking_id, state, version, deadline, created_at, updated_at)
            SELECT \(new.id.uuid), \(booking.sagaState.rawValue), 1, \(new.isFree ? nil : new.deadline), \(new.createdAt), \(new.createdAt)
            \(gate.whereOpen)
            """,
            SagaRepository.logging(firstStep, of: new.id, at: new.createdAt, onlyIf: gate),
            storing(response, claim: claim, onlyIf: gate),
        ] + (try Outbox.statements(appending: events, onlyIf: gate))
    }

    func remember(_ response: StoredResponse, claim: IdempotencyClaim) async throws -> (response: StoredResponse, isNew: Bool) {
        try await postgres.withTransaction { transaction in
            if let stored = try Self.lockKey(claim, in: transaction) { return (stored, false) }
            try transaction.enqueue([Self.storing(response, claim: claim)])
            return (response, true)
        }
    }

    /// Serializes requests with the same key (a transaction-scoped advisory lock on its digest), then
    /// returns the response already stored under it, if any.
    static func lockKey(_ claim: IdempotencyClaim, in transaction: PostgresTransaction) throws -> StoredResponse? {
        try stored(try transaction.pipeline(claiming(claim))[1])
    }

    /// The statements that lock `claim`'s key for the transaction and read the live response stored
    /// under it (one row: the response's columns, NULL when there is none). With `gate`, the read also
    /// opens the gate when there is none.
    static func claiming(_ claim: IdempotencyClaim, opening gate: OutboxCondition? = nil) -> [PostgresStatement] {
        let opening: PostgresStatement = gate.map { ", \($0.opening(when: "k.key IS NULL"))" } ?? ""
        return [
            "SELECT pg_advisory_xact_lock(hashtextextended(\(claim.client + "\u{1F}" + claim.scope + "\u{1F}" + claim.key), 0))",
            """
            SELECT k.request_hash, k.response_status, k.response_body\(opening)
            FROM (SELECT) AS one
            LEFT JOIN booking.idempotency_keys k
                ON k.client = \(claim.client) AND k.scope = \(claim.scope) AND k.key = \(claim.key) AND k.expires_at > \(claim.now)
            """,
        ]
    }

    /// The response the read of ``claiming(_:opening:)`` found, if any.
    static func stored(_ rows: PostgresRows) throws -> StoredResponse? {
        guard let row = rows.first, let hash = try row.decode(Data?.self, at: 0) else { return nil }
        return StoredResponse(
            status: Int(try row.decode(Int32.self, at: 1)), body: Array(try row.decode(Data.self, at: 2)), requestHash: Array(hash))
    }

    /// Stores `response` under `claim`'s key (with `gate`, only while it is open).
    static func storing(_ response: StoredResponse, claim: IdempotencyClaim, onlyIf gate: OutboxCondition? = nil) -> PostgresStatement {
        // An expired row with the same key is replaced; a live one cannot exist while the lock is held.
        """
        INSERT INTO booking.idempotency_keys (client, scope, key, request_hash, response_status, response_body, created_at, expires_at)
        SELECT \(claim.client), \(claim.scope), \(claim.key), \(Data(response.requestHash)), \(Int32(response.status)), \(Data(response.body)),
            \(claim.now), \(claim.expiresAt)
        \(gate?.whereOpen ?? "")
        ON CONFLICT (client, scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
            response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
        """
    }

    // MARK: Reads

    private static let selectBooking: PostgresStatement = """
        SELECT b.booking_id, b.event_id, b.customer_id, b.hold_id, b.status, s.state, b.amount, b.currency, b.payment_due_at,
            b.payment_provider_ref, b.payment_client_secret, b.created_at, b.confirmed_at, b.cancelled_at, b.expired_at,
            b.refund_requested_at, b.refunded_at, b.updated_at,
            ARRAY(SELECT seat_id FROM booking.booking_seats bs WHERE bs.booking_id = b.booking_id ORDER BY seat_id) AS seat_ids,
            b.client_id,
            (SELECT COALESCE(sum(r.amount), 0)::int8 FROM booking.refund_requests r
             WHERE r.booking_id = b.booking_id AND r.purpose IN ('partial', 'cancellation') AND r.status = 'succeeded') AS refunded_amount,
            d.dispute_ref, d.status, d.amount, d.currency, d.reason, d.opened_at, d.closed_at
        FROM booking.bookings b JOIN booking.sagas s USING (booking_id)
        LEFT JOIN LATERAL (
            SELECT dispute_ref, status, amount, currency, reason, opened_at, closed_at FROM booking.disputes
            WHERE booking_id = b.booking_id ORDER BY opened_at DESC, dispute_ref DESC LIMIT 1
        ) d ON true
        """

    func booking(_ id: BookingID) async throws -> Booking? {
        try await postgres.sharedQuery("\(Self.selectBooking) WHERE b.booking_id = \(id.uuid)").first.map(Self.booking)
    }

    func bookings(
        of customer: CustomerID, client: String?, after cursor: ListCursor?, limit: Int
    ) async throws
        -> (bookings: [Booking], nextCursor: String?)
    {
        var query = NewestFirstQuery(select: Self.selectBooking, timeColumn: "b.created_at", idColumn: "b.booking_id")
        query.equal("b.customer_id", customer.rawValue)
        query.equal("b.client_id", client)
        let page = try await query.page(
            on: postgres, after: cursor, limit: limit, decode: Self.booking, position: { ListCursor(createdAt: $0.createdAt, id: $0.id.uuid) })
        return (page.rows, page.nextCursor)
    }

    private static func booking(_ row: PostgresRow) throws -> Booking {
        let status = try row.decode(String.self, at: 4)
        let state = try row.decode(String.self, at: 5)
        guard let bookingStatus = BookingStatus(rawValue: status), let sagaState = SagaState(rawValue: state) else {
            throw SagaInconsistency("unknown booking status \(status) or saga state \(state)")
        }
        let providerRef = try row.decode(String?.self, at: 9)
        return Booking(
            id: BookingID(try row.decode(UUID.self, at: 0)),
            eventID: EventID(try row.decode(UUID.self, at: 1)),
            customerID: try CustomerID(parsing: try row.decode(String.self, at: 2)),
            holdID: HoldID(try row.decode(UUID.self, at: 3)),
            seatIDs: try row.decode([String].self, at: 18).map { try SeatID(parsing: $0) },
            status: bookingStatus,
            sagaState: sagaState,
            amount: Money(amount: try row.decode(Int64.self, at: 6), currency: try Currency(try row.decode(String.self, at: 7))),
            paymentDueAt: try row.decode(Date.self, at: 8),
            payment: providerRef.map { Booking.Payment(providerRef: $0, clientSecret: try? row.decode(String?.self, at: 10)) },
            createdAt: try row.decode(Date.self, at: 11),
            confirmedAt: try row.decode(Date?.self, at: 12),
            cancelledAt: try row.decode(Date?.self, at: 13),
            expiredAt: try row.decode(Date?.self, at: 14),
            refundRequestedAt: try row.decode(Date?.self, at: 15),
            refundedAt: try row.decode(Date?.self, at: 16),
            updatedAt: try row.decode(Date.self, at: 17),
            clientID: try row.decode(String?.self, at: 19),
            refundedAmount: try row.decode(Int64.self, at: 20),
            dispute: try row.decode(String?.self, at: 21).map { reference in
                BookingDispute(
                    id: reference, status: try row.decode(String.self, at: 22),
                    amount: Money(amount: try row.decode(Int64.self, at: 23), currency: try Currency(try row.decode(String.self, at: 24))),
                    reason: try row.decode(String?.self, at: 25), openedAt: try row.decode(Date.self, at: 26),
                    closedAt: try row.decode(Date?.self, at: 27))
            }
        )
    }

    /// The seats of `seats` in active bookings of `event`.
    func seatsInActiveBookings(event: EventID, among seats: [SeatID]) async throws -> [SeatID] {
        try await postgres.query(
            """
            SELECT seat_id FROM booking.booking_seats
            WHERE event_id = \(event.uuid) AND seat_id = ANY(\(seats.map(\.rawValue))::text[]) AND released_at IS NULL ORDER BY seat_id
            """
        ).map { try SeatID(parsing: try $0.decode(String.self, at: 0)) }
    }

    // MARK: Cancellation

    func cancel(
        _ id: BookingID, reason: CancellationReason, customer: CustomerID?, client: String?, correlationID: String, at now: Date
    ) async throws -> CancelOutcome {
        enum Step: Sendable {
            case notFound, notOwner, alreadyCancelled
            case notCancellable(SagaState)
            case cancelled(SeatRelease?)
        }
        let runner = self.runner
        let step: Step = try await postgres.withTransaction { transaction in
            guard let saga = try SagaRepository(transaction: transaction).snapshot(of: id, locking: true) else { return .notFound }
            // Another client application's booking does not exist for this one.
            if let client, saga.clientID != client { return .notFound }
            if let customer, saga.customerID != customer { return .notOwner }
            let run = try runner.run(.cancellation(reason), saga: saga, cause: .correlated(correlationID), at: now, in: transaction)
            switch run.verdict {
            case .alreadyCancelled: return .alreadyCancelled
            case .notCancellable(let state): return .notCancellable(state)
            default: return .cancelled(run.released)
            }
        }
        switch step {
        case .notFound: return .notFound
        case .notOwner: return .notOwner
        case .notCancellable(let state): return .notCancellable(state)
        case .cancelled, .alreadyCancelled:
            // Re-read so the answer shows the booking as stored.
            guard let booking = try await booking(id) else { return .notFound }
            if case .cancelled(let released) = step { return .cancelled(booking, released: released) }
            return .alreadyCancelled(booking)
        }
    }
}
