import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Postgres
import ServiceKit
import SharedModel

extension HTTPField.Name {
    /// `Idempotent-Replayed: true` marks a response replayed from an idempotency key.
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}

/// Bookings (DESIGN.md, Booking):
/// - `POST /v1/bookings` `{hold_id, customer_id}` with `Idempotency-Key` turns a live hold into a
///   booking awaiting payment;
/// - `GET /v1/bookings/{id}`, `GET /v1/customers/{id}/bookings` (cursor pagination);
/// - `POST /v1/bookings/{id}/cancel` `{customer_id}` (the owner; the admin may cancel any).
struct BookingController<Repository: BookingRepository>: Sendable {
    let repository: Repository
    let catalog: EventCatalog
    let holds: SeatHoldStore
    let paymentWindow: Duration
    let paymentGrace: Duration
    var now: @Sendable () -> Date = { Date() }
    /// How long an idempotency key is remembered.
    var idempotencyKeyLifetime: TimeInterval = 24 * 3600
    /// The least time a hold's keys must still live when its conversion starts.
    var conversionMargin: Duration = .seconds(60)

    static var scope: String { "POST /v1/bookings" }

    func addRoutes(to router: Router<ServiceRequestContext>, client: AuthenticationMiddleware) {
        let bookings = router.group("/v1/bookings").add(middleware: client)
        bookings.post(use: create)
        bookings.get("/{id}", use: show)
        bookings.post("/{id}/cancel", use: cancel)
        router.group("/v1/customers").add(middleware: client).get("/{id}/bookings", use: list)
    }

    // MARK: Create

    struct CreateRequest: Decodable {
        let holdID: String
        let customerID: String

        enum CodingKeys: String, CodingKey {
            case holdID = "hold_id"
            case customerID = "customer_id"
        }
    }

    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let key = request.headers[.idempotencyKey] else { throw APIError.badRequest("Idempotency-Key is required") }
        guard (1...255).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) else {
            throw APIError.badRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
        }
        let body = try await request.decode(as: CreateRequest.self, context: context)
        let customer: CustomerID = try Validation.identifier(body.customerID, field: "customer_id")
        let start = now()
        let claim = IdempotencyClaim(
            client: context.principal?.id ?? "anonymous", scope: Self.scope, key: key,
            requestHash: Array(SHA256.hash(data: Array("\(body.holdID)\u{0}\(customer.rawValue)".utf8))),
            expiresAt: start.addingTimeInterval(idempotencyKeyLifetime), now: start)
        // No lookup before the work: a repeated request finds its stored response inside the
        // conversion's transaction (under the key's lock), or - when the hold already became its
        // booking - through the 4xx path below, which returns what is stored under the key.
        do {
            return try await convert(holdToken: body.holdID, customer: customer, claim: claim, context: context)
        } catch let error as APIError where (400..<500).contains(error.status.code) {
            // 4xx outcomes are remembered under the key like successes; 5xx are not (the client retries).
            let stored = try await repository.storeOutcome(
                status: error.status.code, body: Array(try JSONEncoder.platform.encode(error.body)), claim: claim)
            return try replay(stored, claim: claim, replayed: stored.body != Array(try JSONEncoder.platform.encode(error.body)))
        }
    }

    private func convert(holdToken: String, customer: CustomerID, claim: IdempotencyClaim, context: ServiceRequestContext) async throws -> Response {
        guard let reference = HoldReference(token: holdToken), let event = try await catalog.event(reference.eventID) else {
            throw Validation.invalid("hold_id", "hold_id is not a hold this service issued")
        }
        guard let hold = try await holds.hold(reference) else { throw Self.holdExpired }
        switch try await holds.prepareConversion(hold, customer: customer, minimumLife: conversionMargin) {
        case .live: break
        case .expired: throw Self.holdExpired
        case .notOwner: throw APIError.conflict("hold_not_owned", "the hold belongs to another customer")
        case .booked(let booking): throw Self.alreadyBooked(booking)
        }
        let createdAt = claim.now
        let paymentDueAt = createdAt.addingTimeInterval(Double(paymentWindow.wholeMilliseconds) / 1000)
        let deadline = paymentDueAt.addingTimeInterval(Double(paymentGrace.wholeMilliseconds) / 1000)
        let seats = hold.seatIDs.sorted()
        let new = NewBooking(
            id: BookingID(), event: event, customerID: customer, holdID: reference.holdID, seatIDs: seats, amount: try event.price(of: seats),
            createdAt: createdAt, paymentDueAt: paymentDueAt, deadline: deadline, correlationID: context.correlationID,
            clientID: context.principal?.id ?? "anonymous")
        let outcome: CreateOutcome
        do {
            outcome = try await repository.create(new, claim: claim) { booking in
                Array(try JSONEncoder.platform.encode(BookingBody(booking: booking)))
            }
        } catch let error as PostgresError where error.code == .uniqueViolation && error.constraint == "booking_seats_active_once" {
            // The database's guard: another booking took one of these seats first.
            let taken = try await repository.seatsInActiveBookings(event: event.id, among: seats)
            throw APIError.conflict(
                .seatsUnavailable, "some seats are already booked", details: ["seat_ids": .array(taken.map { .string($0.rawValue) })])
        } catch let error as PostgresError where error.code == .uniqueViolation && error.constraint == "bookings_hold_id_key" {
            throw APIError.conflict("hold_booked", "the hold already became a booking")
        }
        switch outcome {
        case .replayed(let stored):
            return try replay(stored, claim: claim)
        case .created(let booking, let stored):
            // Postgres is the truth from here on: if Redis cannot record the conversion, the booking
            // stands and its seats stay unavailable through the database (the cache is rebuilt from it).
            do {
                try await holds.recordConversion(hold, bookingID: booking.id, keepUntil: deadline)
            } catch {
                context.logger.warning(
                    "booking created but its hold could not be extended in Redis", metadata: ["booking_id": "\(booking.id)", "error": "\(error)"])
            }
            context.logger.info("booking created", metadata: ["booking_id": "\(booking.id)", "seats": "\(seats.count)"])
            return Response.json(bytes: stored.body, status: .created)
        }
    }

    private static var holdExpired: APIError {
        APIError.conflict("hold_expired", "the hold does not exist or has expired; hold the seats again")
    }

    private static func alreadyBooked(_ booking: BookingID) -> APIError {
        APIError.conflict("hold_booked", "the hold already became a booking", details: ["booking_id": .string(booking.description)])
    }

    /// Answers with a stored response; a key reused with a different request is 422.
    private func replay(_ stored: StoredResponse, claim: IdempotencyClaim, replayed: Bool = true) throws -> Response {
        guard stored.requestHash == claim.requestHash else {
            throw APIError.unprocessable(.idempotencyKeyReused, "this Idempotency-Key was used with a different request")
        }
        return Response.json(
            bytes: stored.body, status: HTTPResponse.Status(code: stored.status), headers: replayed ? [.idempotentReplayed: "true"] : [:])
    }

    // MARK: Reads

    @Sendable func show(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let id = BookingID(try Validation.pathUUID(context, resource: "booking"))
        let customer = try Validation.customerFilter(request)
        guard let booking = try await repository.booking(id), Self.sees(booking, context: context, customer: customer) else {
            throw APIError.notFound("no booking with this id")
        }
        return try Response.json(BookingBody(booking: booking, showsClientSecret: booking.clientID == context.principal?.id))
    }

    /// Whether the caller may see `booking`: the admin sees every booking, a client application only
    /// those it created, and, when the request names a `customer_id`, only that customer's. Anything
    /// else answers 404 as if the booking did not exist, so ids reveal nothing.
    static func sees(_ booking: Booking, context: ServiceRequestContext, customer: CustomerID?) -> Bool {
        if let customer, booking.customerID != customer { return false }
        switch context.principal {
        case .admin: return true
        case .client(let id): return booking.clientID == id
        case nil: return false
        }
    }

    struct ListBody: Encodable {
        let bookings: [BookingBody]
        let nextCursor: String?

        enum CodingKeys: String, CodingKey {
            case bookings
            case nextCursor = "next_cursor"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(bookings, forKey: .bookings)
            try container.encode(nextCursor, forKey: .nextCursor)
        }
    }

    @Sendable func list(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let text = context.parameters.get("id"), let customer = try? CustomerID(parsing: text) else {
            throw APIError.notFound("no customer with this id")
        }
        let limit = try Validation.limit(request, default: 20, range: 1...100)
        // An empty cursor is no cursor (the first page), as on every other list.
        let cursor = try request.uri.queryParameters["cursor"].flatMap { $0.isEmpty ? nil : $0 }.map { text throws(APIError) -> BookingCursor in
            guard let cursor = BookingCursor(token: String(text)) else { throw APIError.invalidCursor }
            return cursor
        }
        // One extra row tells whether another page exists.
        let client = context.principal == .admin ? nil : context.principal?.id ?? "anonymous"
        let page = try await repository.bookings(of: customer, client: client, after: cursor, limit: limit + 1)
        let shown = page.prefix(limit)
        let next = page.count > limit ? shown.last?.1.token : nil
        return try Response.json(
            ListBody(
                bookings: shown.map { BookingBody(booking: $0.0, showsClientSecret: $0.0.clientID == context.principal?.id) },
                nextCursor: next))
    }

    // MARK: Cancel

    struct CancelRequest: Decodable {
        let customerID: String?
        enum CodingKeys: String, CodingKey { case customerID = "customer_id" }
    }

    @Sendable func cancel(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let id = BookingID(try Validation.pathUUID(context, resource: "booking"))
        let body = try await request.decode(as: CancelRequest.self, context: context)
        let isAdmin = context.principal == .admin
        let customer: CustomerID? = try body.customerID.map { text throws(APIError) in try Validation.identifier(text, field: "customer_id") }
        guard customer != nil || isAdmin else { throw Validation.invalid("customer_id", "customer_id is required: only the owner may cancel") }
        let outcome = try await repository.cancel(
            id, reason: isAdmin ? .admin : .customer, customer: isAdmin ? nil : customer,
            client: isAdmin ? nil : context.principal?.id ?? "anonymous",
            now: now(), correlationID: context.correlationID)
        switch outcome {
        case .cancelled(let booking):
            do {
                try await holds.releaseBookedSeats(event: booking.eventID, holdID: booking.holdID, seats: booking.seatIDs)
            } catch {
                // The seats are released in Postgres; the cache catches up when it is next rebuilt.
                context.logger.warning("booking cancelled but Redis still lists its seats", metadata: ["booking_id": "\(id)", "error": "\(error)"])
            }
            context.logger.info("booking cancelled", metadata: ["booking_id": "\(id)"])
            return try Response.json(BookingBody(booking: booking, showsClientSecret: booking.clientID == context.principal?.id))
        case .alreadyCancelled(let booking):
            return try Response.json(BookingBody(booking: booking, showsClientSecret: booking.clientID == context.principal?.id))
        case .notFound:
            throw APIError.notFound("no booking with this id")
        case .notOwner:
            throw APIError.forbidden("the booking belongs to another customer")
        case .notCancellable(let state):
            throw APIError.conflict(
                "not_cancellable", "a booking in saga state \(state.rawValue) cannot be cancelled here",
                details: ["saga_state": .string(state.rawValue)])
        }
    }
}
