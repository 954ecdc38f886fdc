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
    /// Creates the booking, its seats, its saga's first row and its events, and stores the rendered
    /// response under the idempotency key, all in one transaction. When the key already has a
    /// response (a concurrent request with the same key committed first), nothing is created and
    /// that response is returned instead.
    func create(
        _ booking: NewBooking, claim: IdempotencyClaim, render: @escaping @Sendable (Booking) throws -> [UInt8]
    ) async throws
        -> CreateOutcome
    /// Stores a 4xx outcome under the key unless one is stored already; returns what is stored.
    func storeOutcome(status: Int, body: [UInt8], claim: IdempotencyClaim) async throws -> StoredResponse
    func booking(_ id: BookingID) async throws -> Booking?
    /// A customer's bookings, newest first; only those `client` created, unless `client` is nil (the admin).
    func bookings(of customer: CustomerID, client: String?, after cursor: BookingCursor?, limit: Int) async throws -> [(Booking, BookingCursor)]
    /// The seats of `seats` in active bookings of `event`.
    func seatsInActiveBookings(event: EventID, among seats: [SeatID]) async throws -> [SeatID]
    /// Cancels a booking (see ``CancelOutcome``); `.notFound` when `client` (nil: the admin) did not create it.
    func cancel(
        _ id: BookingID, reason: CancellationReason, customer: CustomerID?, client: String?, now: Date, correlationID: String
    ) async throws -> CancelOutcome
}

enum CreateOutcome: Sendable {
    case created(Booking, StoredResponse)
    case replayed(StoredResponse)
}

enum CancelOutcome: Sendable {
    /// Cancelled now; its seats must leave Redis.
    case cancelled(Booking)
    /// It was cancelled before; nothing changed.
    case alreadyCancelled(Booking)
    case notFound
    case notOwner
    /// The saga is in a state this operation cannot cancel from.
    case notCancellable(SagaState)
}

/// Where a customer's booking list continues: the last booking's creation time (microseconds since
/// 1970) and id. Opaque to clients.
struct BookingCursor: Sendable, Hashable {
    let createdAtMicroseconds: Int64
    let bookingID: BookingID

    init(createdAtMicroseconds: Int64, bookingID: BookingID) {
        self.createdAtMicroseconds = createdAtMicroseconds
        self.bookingID = bookingID
    }

    init?(token: String) {
        guard let bytes = Base64URL.decode(token), let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        // Creation times lie between 1970 and 9999; anything else was not issued here.
        guard parts.count == 2, let micros = Int64(parts[0]), (0...253_402_300_799_999_999).contains(micros),
            let id = UUID(uuidString: String(parts[1]))
        else { return nil }
        self.init(createdAtMicroseconds: micros, bookingID: BookingID(id))
    }

    var token: String {
        Base64URL.encode(Array("\(createdAtMicroseconds):\(bookingID)".utf8))
    }
}

/// ``BookingRepository`` on Postgres.
struct PostgresBookingRepository: BookingRepository {
    let postgres: PostgresClient
    /// How long a cancellation's refund may stay pending before the saga is `compensation_failed`.
    var refundPendingBound: Duration = SagaLedger.defaultRefundPendingBound

    func create(
        _ new: NewBooking, claim: IdempotencyClaim, render: @escaping @Sendable (Booking) throws -> [UInt8]
    ) async throws
        -> CreateOutcome
    {
        try await postgres.withTransaction { transaction in
            if let stored = try Self.lockKey(claim, in: transaction) { return .replayed(stored) }
            // The saga's first row goes through the model's state machine: a new saga awaits payment; a
            // booking that costs nothing (free seats) has nothing to pay and is confirmed at once.
            var saga = BookingSaga()
            let isFree = new.amount.isZero
            if isFree { try saga.transition(to: .confirmed) }
            let booking = Booking(
                id: new.id, eventID: new.event.id, customerID: new.customerID, holdID: new.holdID, seatIDs: new.seatIDs,
                status: saga.bookingStatus, sagaState: saga.state, amount: new.amount, paymentDueAt: new.paymentDueAt, payment: nil,
                createdAt: new.createdAt, confirmedAt: isFree ? new.createdAt : nil, cancelledAt: nil, expiredAt: nil, refundRequestedAt: nil,
                refundedAt: nil, updatedAt: new.createdAt, clientID: new.clientID
            )
            let response = StoredResponse(status: 201, body: try render(booking), requestHash: claim.requestHash)
            let requested = BookingRequested(
                bookingID: new.id, eventID: new.event.id, hostID: new.event.hostID, customerID: new.customerID, seatIDs: new.seatIDs,
                amount: new.amount, paymentDueAt: new.paymentDueAt)
            let next: any DomainEvent =
                isFree
                ? BookingConfirmed(
                    bookingID: new.id, eventID: new.event.id, hostID: new.event.hostID, customerID: new.customerID, seatIDs: new.seatIDs,
                    amount: new.amount, providerRef: nil, confirmedAt: new.createdAt, eventEndsAt: new.event.endsAt)
                : PaymentRequested(bookingID: new.id, amount: new.amount, customerID: new.customerID, idempotencyKey: "booking-\(new.id)-payment")
            // One round trip: the booking, its seats, the saga's first row and step, the response
            // under the idempotency key, and the events.
            try Outbox.append(
                [requested, next],
                after: [
                    PostgresStatement(
                        """
                        INSERT INTO booking.bookings (booking_id, event_id, customer_id, hold_id, status, amount, currency, payment_due_at,
                            created_at, updated_at, confirmed_at, client_id)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, CASE WHEN $10 THEN $9 END, $11)
                        """,
                        [
                            new.id.uuid, new.event.id.uuid, new.customerID.rawValue, new.holdID.uuid, saga.bookingStatus.rawValue, new.amount.amount,
                            new.amount.currency.code, new.paymentDueAt, new.createdAt, isFree, new.clientID,
                        ]),
                    PostgresStatement(
                        """
                        INSERT INTO booking.booking_seats (booking_id, event_id, seat_id, price)
                        SELECT $1, $2, seat.id, seat.price FROM unnest($3::text[], $4::int8[]) AS seat (id, price)
                        """,
                        [new.id.uuid, new.event.id.uuid, new.seatIDs.map(\.rawValue), new.seatIDs.map { new.event.prices[$0] ?? 0 }]),
                    PostgresStatement(
                        "INSERT INTO booking.sagas (booking_id, state, version, deadline, created_at, updated_at) VALUES ($1, $2, 1, $3, $4, $4)",
                        [new.id.uuid, saga.state.rawValue, isFree ? nil : new.deadline, new.createdAt]),
                    PostgresStatement(
                        """
                        INSERT INTO booking.saga_steps (booking_id, step, kind, outcome, to_state, detail, occurred_at)
                        VALUES ($1, $2, 'forward', 'succeeded', $3, $4, $5)
                        """,
                        [
                            new.id.uuid, isFree ? "booking_confirmed" : "booking_requested", saga.state.rawValue,
                            isFree ? "free: nothing to pay" : "payment requested", new.createdAt,
                        ]),
                    Self.storing(response, claim: claim),
                ],
                producer: .booking, correlationID: new.correlationID, occurredAt: new.createdAt, in: transaction)
            return .created(booking, response)
        }
    }

    func storeOutcome(status: Int, body: [UInt8], claim: IdempotencyClaim) async throws -> StoredResponse {
        try await postgres.withTransaction { transaction in
            if let stored = try Self.lockKey(claim, in: transaction) { return stored }
            let response = StoredResponse(status: status, body: body, requestHash: claim.requestHash)
            try Self.store(response, claim: claim, in: transaction)
            return response
        }
    }

    /// Serializes requests with the same key (a transaction-scoped advisory lock on its digest), then
    /// returns the response already stored under it, if any.
    private static func lockKey(_ claim: IdempotencyClaim, in transaction: PostgresTransaction) throws -> StoredResponse? {
        let results = try transaction.pipeline([
            PostgresStatement(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [claim.client + "\u{1F}" + claim.scope + "\u{1F}" + claim.key]),
            PostgresStatement(selectStored, [claim.client, claim.scope, claim.key, claim.now]),
        ])
        return try results[1].first.map(storedResponse)
    }

    private static func store(_ response: StoredResponse, claim: IdempotencyClaim, in transaction: PostgresTransaction) throws {
        try transaction.pipeline([storing(response, claim: claim)])
    }

    private static func storing(_ response: StoredResponse, claim: IdempotencyClaim) -> PostgresStatement {
        // An expired row with the same key is replaced; a live one cannot exist while the lock is held.
        PostgresStatement(
            """
            INSERT INTO booking.idempotency_keys (client, scope, key, request_hash, response_status, response_body, created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (client, scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
                response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
            """,
            [
                claim.client, claim.scope, claim.key, Data(response.requestHash), Int32(response.status), Data(response.body), claim.now,
                claim.expiresAt,
            ]
        )
    }

    private static let selectStored = """
        SELECT request_hash, response_status, response_body FROM booking.idempotency_keys
        WHERE client = $1 AND scope = $2 AND key = $3 AND expires_at > $4
        """

    private static func storedResponse(_ row: PostgresRow) throws -> StoredResponse {
        StoredResponse(
            status: Int(try row.decode(Int32.self, at: 1)), body: Array(try row.decode(Data.self, at: 2)),
            requestHash: Array(try row.decode(Data.self, at: 0)))
    }

    // MARK: Reads

    private static let selectBooking = """
        SELECT b.booking_id, b.event_id, b.customer_id, b.hold_id, b.status, s.state, b.amount, b.currency, b.payment_due_at,
            b.payment_provider_ref, b.payment_client_secret, b.created_at, b.confirmed_at, b.cancelled_at, b.expired_at,
            b.refund_requested_at, b.refunded_at, b.updated_at,
            ARRAY(SELECT seat_id FROM booking.booking_seats bs WHERE bs.booking_id = b.booking_id ORDER BY seat_id) AS seat_ids,
            (extract(epoch FROM b.created_at) * 1000000)::int8 AS created_micros, b.client_id
        FROM booking.bookings b JOIN booking.sagas s USING (booking_id)
        """

    func booking(_ id: BookingID) async throws -> Booking? {
        let rows = try await postgres.query(Self.selectBooking + " WHERE b.booking_id = $1", [id.uuid])
        return try rows.first.map(Self.booking)
    }

    func bookings(of customer: CustomerID, client: String?, after cursor: BookingCursor?, limit: Int) async throws -> [(Booking, BookingCursor)] {
        let rows: PostgresRows
        if let cursor {
            rows = try await postgres.query(
                Self.selectBooking + """
                     WHERE b.customer_id = $1 AND ($5::text IS NULL OR b.client_id = $5)
                      AND (b.created_at, b.booking_id) < (timestamptz 'epoch' + $2 * interval '1 microsecond', $3)
                    ORDER BY b.created_at DESC, b.booking_id DESC LIMIT $4
                    """,
                [customer.rawValue, cursor.createdAtMicroseconds, cursor.bookingID.uuid, limit, client])
        } else {
            rows = try await postgres.query(
                Self.selectBooking + """
                     WHERE b.customer_id = $1 AND ($3::text IS NULL OR b.client_id = $3)
                    ORDER BY b.created_at DESC, b.booking_id DESC LIMIT $2
                    """,
                [customer.rawValue, limit, client])
        }
        return try rows.map { row in
            let booking = try Self.booking(row)
            return (booking, BookingCursor(createdAtMicroseconds: try row.decode(Int64.self, named: "created_micros"), bookingID: booking.id))
        }
    }

    private static func booking(_ row: PostgresRow) throws -> Booking {
        let status = try row.decode(String.self, at: 4)
        let state = try row.decode(String.self, at: 5)
        guard let bookingStatus = BookingStatus(rawValue: status), let sagaState = SagaState(rawValue: state) else {
            throw InventoryCorrupted(description: "unknown booking status \(status) or saga state \(state)")
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
            clientID: try row.decode(String?.self, at: 20)
        )
    }

    func seatsInActiveBookings(event: EventID, among seats: [SeatID]) async throws -> [SeatID] {
        let rows = try await postgres.query(
            "SELECT seat_id FROM booking.booking_seats WHERE event_id = $1 AND seat_id = ANY($2::text[]) AND released_at IS NULL ORDER BY seat_id",
            [event.uuid, seats.map(\.rawValue)])
        return try rows.map { try SeatID(parsing: try $0.decode(String.self, at: 0)) }
    }

    // MARK: Cancellation

    /// How long before the event's start a confirmed booking may be cancelled with a full refund.
    static let refundCutoff: TimeInterval = 24 * 3600

    func cancel(
        _ id: BookingID, reason: CancellationReason, customer: CustomerID?, client: String? = nil, now: Date, correlationID: String
    ) async throws -> CancelOutcome {
        enum Step: Sendable {
            case cancelled, alreadyCancelled, notFound, notOwner
            case notCancellable(SagaState)
        }
        let step: Step = try await postgres.withTransaction { transaction in
            let rows = try transaction.query(
                """
                SELECT b.customer_id, e.starts_at, b.client_id
                FROM booking.bookings b JOIN booking.sagas s USING (booking_id) JOIN booking.events e ON e.event_id = b.event_id
                WHERE b.booking_id = $1 FOR UPDATE OF b, s
                """,
                [id.uuid])
            guard let row = rows.first else { return .notFound }
            // Another client application's booking does not exist for this one.
            if let client, try row.decode(String?.self, at: 2) != client { return .notFound }
            if let customer, try row.decode(String.self, at: 0) != customer.rawValue { return .notOwner }
            let ledger = SagaLedger(transaction: transaction, now: now)
            guard let current = try ledger.load(id) else { return .notFound }
            let state = current.state
            // Cancelled, or cancelled with its refund on the way or done: answered unchanged.
            if [.cancelled, .cancelRequested, .refundPending, .refunded].contains(state) { return .alreadyCancelled }
            guard state == .awaitingPayment || state == .confirmed else { return .notCancellable(state) }
            // The refund policy: a confirmed booking cancelled at least `refundCutoff` of elapsed time
            // before the event starts is refunded in full; later, nothing is refunded. Elapsed time is
            // measured between instants, so a daylight-saving change in between shifts nothing.
            let startsAt = try row.decode(Date.self, at: 1)
            let refundable =
                state == .confirmed && current.providerRef != nil && !current.amount.isZero && startsAt.timeIntervalSince(now) >= Self.refundCutoff
            let refundDue = refundable ? current.amount : .zero(current.amount.currency)
            let cancelled = BookingCancelled(bookingID: id, reason: reason, refundDue: refundDue)
            _ = try ledger.transition(
                current, to: refundable ? .cancelRequested : .cancelled, step: refundable ? "cancel_requested" : "booking_cancelled",
                detail: "cancelled by \(reason.rawValue); seats released; refund due \(refundDue)",
                stamps: refundable ? [.cancelled, .refundRequested] : .cancelled, releaseSeats: true,
                emitting: refundable ? nil : SagaEmission([cancelled], correlationID: correlationID))
            if refundable {
                try ledger.requestRefund(
                    current.advanced(to: .cancelRequested), reason: reason == .admin ? .adminCancellation : .customerCancellation,
                    idempotencyKey: "refund-cancel-\(id)", lookupExisting: false, bound: refundPendingBound, step: "refund_requested",
                    detail: "refund of \(refundDue) requested under key refund-cancel-\(id)", emitting: [cancelled], correlationID: correlationID)
            }
            return .cancelled
        }
        switch step {
        case .notFound: return .notFound
        case .notOwner: return .notOwner
        case .notCancellable(let state): return .notCancellable(state)
        case .cancelled, .alreadyCancelled:
            // Re-read so the answer shows the booking as stored.
            guard let booking = try await booking(id) else { return .notFound }
            if case .cancelled = step { return .cancelled(booking) }
            return .alreadyCancelled(booking)
        }
    }
}
