import Foundation
import Hummingbird
import Logging
import ServiceKit
import SharedModel

/// Seat holds (DESIGN.md, Booking):
/// - `POST /v1/holds` `{event_id, seat_ids, customer_id}` holds all the seats or none: 201 with the
///   hold's id and expiry, or 409 `seats_unavailable` listing exactly the seats that were not
///   available; 409 `hold_limit_reached` past the customer's held-seat limit, 429 `rate_limited`
///   (with `Retry-After`) past the customer's hold attempts per minute;
/// - `DELETE /v1/holds/{id}?customer_id=...` releases a hold (its owner only; compare-and-delete).
///
/// The routes validate and encode; ``HoldService`` owns the flow.
struct HoldController: Sendable {
    let catalog: EventCatalog
    let service: HoldService
    let maximumSeatsPerHold: Int
    /// What the payment provider can charge: a hold whose seats it could not charge together is refused.
    var chargeRules = ProviderCurrencyRules.stripe

    func addRoutes(to router: Router<ServiceRequestContext>, client: some RouterMiddleware<ServiceRequestContext>) {
        let group = router.group("/v1/holds").add(middleware: client)
        group.post(use: create)
        group.delete("/{id}", use: release)
    }

    struct CreateRequest: Decodable {
        let eventID: String
        let seatIDs: [String]
        let customerID: String

        enum CodingKeys: String, CodingKey {
            case eventID = "event_id"
            case seatIDs = "seat_ids"
            case customerID = "customer_id"
        }

        /// The request's body, read from its JSON tree when that is an object whose three members are
        /// strings and an array of strings (other members ignored, as `Decodable` ignores them): what the
        /// platform's decoder gives for it, without its containers, on the service's hottest route.
        /// Anything else goes to that decoder, so its answers and error messages stay the only ones.
        static func read(_ request: Request, context: ServiceRequestContext) async throws -> CreateRequest {
            var request = request
            let body = try await request.collectBody(upTo: context.maxUploadSize)
            if case .object(let members)? = JSONValue(fastParsing: Data(body.readableBytesView)),
                case .string(let eventID)? = members[CodingKeys.eventID.rawValue],
                case .string(let customerID)? = members[CodingKeys.customerID.rawValue],
                case .array(let elements)? = members[CodingKeys.seatIDs.rawValue]
            {
                let seatIDs = elements.compactMap(\.stringValue)
                if seatIDs.count == elements.count { return CreateRequest(eventID: eventID, seatIDs: seatIDs, customerID: customerID) }
            }
            return try await request.decode(as: CreateRequest.self, context: context)
        }
    }

    struct HoldBody: Encodable {
        let holdID: String
        let eventID: EventID
        let customerID: CustomerID
        let seatIDs: [SeatID]
        let expiresAt: String

        enum CodingKeys: String, CodingKey {
            case holdID = "hold_id"
            case eventID = "event_id"
            case customerID = "customer_id"
            case seatIDs = "seat_ids"
            case expiresAt = "expires_at"
        }

        /// The body as JSON: the bytes `JSONValueEncoder.jsonBytes` writes for it (keys sorted; tested
        /// equal), written directly. Every hold answers with it, and the general encoder was 4.6% of the
        /// service's CPU under `scripts/profile holds`.
        var jsonBytes: [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(176 + 12 * seatIDs.count)
            func member(_ name: String, _ value: String) {
                bytes.append(contentsOf: name.utf8)
                JSONValue.writeString(value, to: &bytes)
            }
            member(#"{"customer_id":"#, customerID.rawValue)
            member(#","event_id":"#, eventID.description)
            member(#","expires_at":"#, expiresAt)
            member(#","hold_id":"#, holdID)
            bytes.append(contentsOf: #","seat_ids":["#.utf8)
            for (index, seat) in seatIDs.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONValue.writeString(seat.rawValue, to: &bytes)
            }
            bytes.append(contentsOf: "]}".utf8)
            return bytes
        }
    }

    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let body = try await CreateRequest.read(request, context: context)
        guard let eventUUID = UUID(uuidString: body.eventID) else { throw Validation.invalid("event_id", "event_id must be an event's UUID") }
        let customer: CustomerID = try Validation.identifier(body.customerID, field: "customer_id")
        let seats = try Validation.seats(body.seatIDs, maximum: maximumSeatsPerHold)
        guard let event = try await catalog.event(EventID(eventUUID)) else { throw Validation.invalid("event_id", "no event with this id") }
        _ = try Validation.chargeableTotal(of: seats, in: event, rules: chargeRules)
        switch try await service.place(seats, of: event, for: customer, logger: context.logger) {
        case .held(let reference, let expiresAt):
            let hold = HoldBody(
                holdID: reference.token, eventID: event.id, customerID: customer, seatIDs: seats, expiresAt: RFC3339.string(from: expiresAt))
            return Response.json(bytes: hold.jsonBytes, status: .created)
        case .unavailable(let taken):
            throw APIError.conflict(
                .seatsUnavailable, "some seats are not available", details: ["seat_ids": .array(taken.map { .string($0.rawValue) })])
        case .salesClosed:
            throw APIError.conflict("sales_closed", "the event has started; its seats can no longer be held")
        case .eventCancelled:
            throw APIError.conflict("event_cancelled", "the event was cancelled; its seats can no longer be held")
        case .cacheUnavailable:
            throw APIError.dependencyUnavailable("the seat cache could not be rebuilt; retry later")
        case .rateLimited(let wait, let limit):
            throw APIError.rateLimited(
                "too many hold attempts by this customer: the limit is \(limit.capacity) per minute (HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE)",
                retryAfter: wait, details: ["limit": .integer(Int64(limit.capacity))])
        case .limitReached(let limit, let held, let requested):
            throw APIError.conflict(
                "hold_limit_reached",
                "this customer may hold at most \(limit) seats at once (holds and bookings awaiting payment); \(held) are held, \(requested) more requested",
                details: ["limit": .integer(Int64(limit)), "held": .integer(Int64(held)), "requested": .integer(Int64(requested))])
        }
    }

    @Sendable func release(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let token = context.parameters.get("id"), let reference = HoldReference(token: token) else {
            throw APIError.notFound("no hold with this id")
        }
        guard let customerText = request.uri.queryParameters["customer_id"] else {
            throw APIError.badRequest("customer_id is required: only the hold's owner may release it")
        }
        let customer: CustomerID = try Validation.identifier(String(customerText), field: "customer_id")
        switch try await service.release(reference, customer: customer, logger: context.logger) {
        case .released:
            return Response(status: .noContent)
        case .notFound:
            throw APIError.notFound("no hold with this id; it may have expired")
        case .notOwner:
            throw APIError.forbidden("the hold belongs to another customer")
        case .booked(let booking):
            throw APIError.conflict(
                "hold_booked", "the hold became a booking; cancel the booking instead", details: ["booking_id": .string(booking.description)])
        }
    }
}
