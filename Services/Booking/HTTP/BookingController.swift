import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Messaging
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
///
/// The routes decode, call ``BookingService`` or the repository, and encode; the flows live there.
struct BookingController<Repository: BookingRepository>: Sendable {
    let service: BookingService<Repository>
    let partialRefunds: PartialRefunds

    func addRoutes(
        to router: Router<ServiceRequestContext>, client: some RouterMiddleware<ServiceRequestContext>, admin: AuthenticationMiddleware
    ) {
        let bookings = router.group("/v1/bookings").add(middleware: client)
        bookings.post(use: create)
        bookings.get("/{id}", use: show)
        bookings.post("/{id}/cancel", use: cancel)
        router.group("/v1/bookings").add(middleware: admin).post("/{id}/refunds", use: refund)
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

    /// The request's `Idempotency-Key`: required, 1 to 255 printable ASCII characters (400 otherwise).
    static func idempotencyKey(_ request: Request) throws(APIError) -> String {
        guard let key = request.headers.value(of: .idempotencyKey) else { throw APIError.badRequest("Idempotency-Key is required") }
        guard (1...255).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) else {
            throw APIError.badRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
        }
        return key
    }

    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let key = try Self.idempotencyKey(request)
        let body = try await request.decode(as: CreateRequest.self, context: context)
        let customer: CustomerID = try Validation.identifier(body.customerID, field: "customer_id")
        let outcome = try await service.create(
            holdToken: body.holdID, customer: customer, key: key, client: context.principal?.id ?? "anonymous",
            correlationID: context.correlationID, logger: context.logger)
        switch outcome {
        case .answered(let answer):
            return try respond(answer)
        case .rejected(let rejection, let claim):
            let error = Self.error(rejection)
            return try respond(
                try await service.remember(status: error.status.code, body: Array(try JSONEncoder.platform.encode(error.body)), claim: claim))
        }
    }

    /// The answer to a rejected conversion.
    static func error(_ rejection: BookingService<Repository>.Rejection) -> APIError {
        switch rejection {
        case .unknownHold:
            Validation.invalid("hold_id", "hold_id is not a hold this service issued")
        case .holdExpired:
            APIError.conflict("hold_expired", "the hold does not exist or has expired; hold the seats again")
        case .holdNotOwned:
            APIError.conflict("hold_not_owned", "the hold belongs to another customer")
        case .holdBooked(let booking):
            APIError.conflict(
                "hold_booked", "the hold already became a booking", details: booking.map { ["booking_id": .string($0.description)] } ?? [:])
        case .seatsTaken(let taken):
            APIError.conflict(.seatsUnavailable, "some seats are already booked", details: ["seat_ids": .array(taken.map { .string($0.rawValue) })])
        case .eventCancelled:
            APIError.conflict("event_cancelled", "the event was cancelled; it takes no more bookings")
        }
    }

    /// Answers with a stored response (marked when replayed); a key reused with a different request is 422.
    private func respond(_ answer: BookingService<Repository>.Answer) throws -> Response {
        switch answer {
        case .fresh(let stored):
            return Response.json(bytes: stored.body, status: HTTPResponse.Status(code: stored.status))
        case .replayed(let stored):
            return Response.json(bytes: stored.body, status: HTTPResponse.Status(code: stored.status), headers: [.idempotentReplayed: "true"])
        case .keyReused:
            throw APIError.unprocessable(.idempotencyKeyReused, "this Idempotency-Key was used with a different request")
        }
    }

    // MARK: Reads

    @Sendable func show(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let id = BookingID(try Validation.pathUUID(context, resource: "booking"))
        let customer = try Validation.customerFilter(request)
        guard let booking = try await service.repository.booking(id), Self.sees(booking, context: context, customer: customer) else {
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

    @Sendable func list(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let text = request.pathParameter("id", context: context), let customer = try? CustomerID(parsing: text) else {
            throw APIError.notFound("no customer with this id")
        }
        let query = QueryFilter(request)
        let limit = try query.limit(default: 20, in: 1...100)
        let cursor = try query.cursor()
        let client = context.principal == .admin ? nil : context.principal?.id ?? "anonymous"
        let page = try await service.repository.bookings(of: customer, client: client, after: cursor, limit: limit)
        return try Response.json(
            ListPage(
                "bookings", items: page.bookings.map { BookingBody(booking: $0, showsClientSecret: $0.clientID == context.principal?.id) },
                nextCursor: page.nextCursor))
    }

    // MARK: Partial refund

    struct RefundRequest: Decodable {
        let amount: Int64
        let note: String
    }

    @Sendable func refund(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let key = try Self.idempotencyKey(request)
        let body = try await request.decode(as: RefundRequest.self, context: context)
        let id = BookingID(try Validation.pathUUID(context, resource: "booking"))
        guard body.amount > 0 else { throw Validation.invalid("amount", "amount must be a positive number of minor units") }
        let note = body.note.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...500).contains(note.unicodeScalars.count), !note.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw Validation.invalid("note", "note must be 1 to 500 characters without control characters")
        }
        let audit = AuditRecord.http(
            service: "booking", request, context, action: "booking.partially_refunded", targetID: id.description, outcome: "requested",
            status: .accepted)
        guard
            let outcome = try await partialRefunds.refund(
                id, amount: body.amount, note: note, key: key, correlationID: context.correlationID, audit: audit)
        else { throw APIError.notFound("no booking with this id") }
        if outcome.keyReused { throw APIError.unprocessable(.idempotencyKeyReused, "this Idempotency-Key was used with a different request") }
        if outcome.response.status == 202, !outcome.replayed {
            context.logger.info("partial refund requested", metadata: ["booking_id": "\(id)", "amount": "\(body.amount)"])
        }
        return try respond(outcome.replayed ? .replayed(outcome.response) : .fresh(outcome.response))
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
        let outcome = try await service.cancel(
            id, reason: isAdmin ? .admin : .customer, customer: isAdmin ? nil : customer,
            client: isAdmin ? nil : context.principal?.id ?? "anonymous", correlationID: context.correlationID, logger: context.logger)
        switch outcome {
        case .cancelled(let booking, _), .alreadyCancelled(let booking):
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
