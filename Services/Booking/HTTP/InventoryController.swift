import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceKit
import SharedModel

/// Events and seat maps (DESIGN.md, Booking):
/// - `POST /v1/events` (admin) creates an event with its seats;
/// - `GET /v1/events/{id}` reads it, with its times in UTC and in the event's zone, its `status`
///   (`active` or `cancelled`) and a cancelled event's `cancellation` progress;
/// - `POST /v1/events/{id}/cancel` (admin) `{reason}` cancels it: 202 with the event (200 when it was
///   cancelled before; the first reason stands); its bookings are then cancelled and refunded by
///   ``EventCancellationWorker``;
/// - `GET /v1/events/{id}/seats` is the seat map: each seat's price and state, derived from active
///   bookings in Postgres and live holds in Redis.
struct InventoryController: Sendable {
    let catalog: EventCatalog
    let inventory: any InventoryRepository
    let holds: SeatHoldStore
    let cancellations: EventCancellationStore
    let cancelledEvents: CancelledEvents
    /// What the payment provider can charge: events are refused with prices it cannot charge.
    var chargeRules = ProviderCurrencyRules.stripe
    /// The most seats one event may have.
    var maximumSeatsPerEvent = 10_000
    var clock: WallClock = .system

    func addRoutes(to router: Router<ServiceRequestContext>, client: some RouterMiddleware<ServiceRequestContext>, admin: AuthenticationMiddleware) {
        let admins = router.group("/v1/events").add(middleware: admin)
        admins.post(use: create)
        admins.post("/{id}/cancel", use: cancel)
        let reads = router.group("/v1/events").add(middleware: client)
        reads.get("/{id}", use: show)
        reads.get("/{id}/seats", use: seatMap)
    }

    struct CreateRequest: Decodable {
        let name: String
        let hostID: String
        let startsAt: String
        let endsAt: String
        let timeZone: String
        let currency: String
        let seats: [Seat]

        struct Seat: Decodable {
            let seatID: String
            let price: Int64
            enum CodingKeys: String, CodingKey {
                case seatID = "seat_id"
                case price
            }
        }

        enum CodingKeys: String, CodingKey {
            case name
            case hostID = "host_id"
            case startsAt = "starts_at"
            case endsAt = "ends_at"
            case timeZone = "time_zone"
            case currency, seats
        }
    }

    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let body = try await request.decode(as: CreateRequest.self, context: context)
        let event = try validate(body)
        let audit = AuditRecord.http(
            service: "booking", request, context, action: "event.created", targetID: event.id.uuid.lowercasedString, outcome: "created",
            status: .created, details: ["host_id": .string(event.hostID.rawValue), "seats": .integer(Int64(event.seats.count))])
        try await catalog.create(event, audit: audit)
        context.logger.info("event created", metadata: ["event_id": "\(event.id)", "seats": "\(event.seats.count)"])
        return try Response.json(EventBody(event: event), status: .created)
    }

    struct CancelRequest: Decodable {
        let reason: String
    }

    @Sendable func cancel(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        // The body first: one over the limit is 413 whatever the path names.
        let body = try await request.decode(as: CancelRequest.self, context: context)
        let event = try await event(context)
        let reason = body.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...500).contains(reason.unicodeScalars.count), !reason.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw Validation.invalid("reason", "reason must be 1 to 500 characters without control characters")
        }
        let operatorName = AuditRoutes.operatorName(request)
        let audit = AuditRecord.http(
            service: "booking", request, context, action: "event.cancelled", targetID: event.id.uuid.lowercasedString, outcome: "cancelled",
            status: .accepted, operatorName: operatorName)
        let outcome = try await cancellations.cancel(
            event.id, reason: reason, operatorName: operatorName, correlationID: context.correlationID, audit: audit, at: clock.now())
        switch outcome {
        case .cancelled(let status):
            cancelledEvents.remember(event.id)
            context.logger.info("event cancelled", metadata: ["event_id": "\(event.id)", "bookings": "\(status.bookingsTotal)"])
            return try Response.json(EventBody(event: event, cancellation: status), status: .accepted)
        case .alreadyCancelled(let status):
            cancelledEvents.remember(event.id)
            return try Response.json(EventBody(event: event, cancellation: status))
        case .notFound:
            throw APIError.notFound("no event with this id")
        case .ended(let endsAt):
            throw APIError.conflict("event_ended", "the event ended at \(RFC3339.string(from: endsAt)); it can no longer be cancelled")
        }
    }

    func validate(_ body: CreateRequest) throws(APIError) -> SellableEvent {
        let name = body.name.trimmingCharacters(in: .whitespacesAndNewlines)
        // Counted in Unicode scalars, the unit of Postgres' char_length (the table's CHECK).
        guard (1...200).contains(name.unicodeScalars.count), !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw Validation.invalid("name", "name must be 1 to 200 characters without control characters")
        }
        let host: HostID = try Validation.identifier(body.hostID, field: "host_id")
        let startsAt = try Validation.timestamp(body.startsAt, field: "starts_at")
        let endsAt = try Validation.timestamp(body.endsAt, field: "ends_at")
        guard endsAt > startsAt else { throw Validation.invalid("ends_at", "ends_at must be after starts_at") }
        guard startsAt >= Date(timeIntervalSince1970: 0), endsAt <= Self.latestInstant else {
            throw Validation.invalid("starts_at", "starts_at and ends_at must lie between 1970 and 9999")
        }
        // Foundation calls UTC "GMT"; any other accepted name must be the zone's own IANA name.
        guard let timeZone = TimeZone(identifier: body.timeZone),
            timeZone.identifier == body.timeZone && body.timeZone.contains("/") || body.timeZone == "UTC"
        else {
            throw Validation.invalid("time_zone", "time_zone must be an IANA time zone name such as America/New_York")
        }
        guard let currency = try? Currency(body.currency), currency.code == body.currency else {
            throw Validation.invalid("currency", "currency must be an ISO 4217 code in upper case, e.g. EUR")
        }
        guard chargeRules.supports(currency) else {
            throw Validation.invalid("currency", "the payment provider (\(chargeRules.provider)) does not support \(currency.code)")
        }
        let seatIDs = try Validation.seats(body.seats.map(\.seatID), field: "seats", maximum: maximumSeatsPerEvent)
        var seats: [SellableEvent.Seat] = []
        for (seat, listed) in zip(seatIDs, body.seats) {
            let price = Money(amount: listed.price, currency: currency)
            // 0 is a free seat; any other price must be one the provider can charge.
            if listed.price < 0 || chargeRules.problem(charging: price) != nil {
                let why = listed.price < 0 ? "a price must not be negative" : chargeRules.problem(charging: price)?.description ?? ""
                throw Validation.invalid(
                    "seats", "seat \(seat.rawValue) costs \(listed.price) \(currency.code) minor units: \(why)",
                    details: ["seat_ids": .array([.string(seat.rawValue)])])
            }
            seats.append(SellableEvent.Seat(id: seat, price: listed.price))
        }
        return SellableEvent(
            id: EventID(), name: name, hostID: host, startsAt: startsAt, endsAt: endsAt, timeZone: timeZone, timeZoneName: body.timeZone,
            currency: currency,
            createdAt: clock.now(), seats: seats)
    }

    /// 9999-12-31T23:59:59Z, the last instant RFC 3339's four-digit years can show.
    static let latestInstant = Date(timeIntervalSince1970: 253_402_300_799)

    @Sendable func show(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let event = try await event(context)
        let cancellation = try await cancelledEvents.isCancelled(event.id) ? try await cancellations.status(of: event.id) : nil
        return try Response.json(EventBody(event: event, cancellation: cancellation))
    }

    @Sendable func seatMap(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let event = try await event(context)
        let booked = try await inventory.activeBookingSeats(of: event.id)
        let held = try await holds.heldSeats(event: event.id, among: event.seats.map(\.id).filter { booked[$0] == nil })
        let seats = event.seats.map { seat -> SeatBody in
            let state: SeatState =
                switch booked[seat.id] {
                case .confirmed: .sold
                case .some: .held
                case .none: held.contains(seat.id) ? .held : .available
                }
            return SeatBody(seatID: seat.id.rawValue, price: seat.price, state: state)
        }
        return try Response.json(SeatMapBody(eventID: event.id, currency: event.currency.code, seats: seats))
    }

    private func event(_ context: ServiceRequestContext) async throws -> SellableEvent {
        let id = try Validation.pathUUID(context, resource: "event")
        guard let event = try await catalog.event(EventID(id)) else { throw APIError.notFound("no event with this id") }
        return event
    }
}

/// The JSON form of an event: instants in UTC (`starts_at`) and as wall-clock time with the
/// offset in the event's zone at that instant (`starts_at_local`).
struct EventBody: Encodable {
    let event: SellableEvent
    var cancellation: EventCancellationStatus? = nil

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id"
        case name
        case hostID = "host_id"
        case startsAt = "starts_at"
        case endsAt = "ends_at"
        case startsAtLocal = "starts_at_local"
        case endsAtLocal = "ends_at_local"
        case timeZone = "time_zone"
        case currency
        case seatCount = "seat_count"
        case createdAt = "created_at"
        case status, cancellation
    }

    private enum CancellationKeys: String, CodingKey {
        case reason
        case cancelledBy = "cancelled_by"
        case cancelledAt = "cancelled_at"
        case completedAt = "completed_at"
        case bookingsTotal = "bookings_total"
        case bookingsDone = "bookings_done"
        case bookingsRemaining = "bookings_remaining"
        case refunds
    }

    private enum RefundKeys: String, CodingKey {
        case requested, succeeded, failed
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(event.id, forKey: .eventID)
        try container.encode(event.name, forKey: .name)
        try container.encode(event.hostID, forKey: .hostID)
        try container.encode(RFC3339.string(from: event.startsAt), forKey: .startsAt)
        try container.encode(RFC3339.string(from: event.endsAt), forKey: .endsAt)
        try container.encode(RFC3339.string(from: event.startsAt, in: event.timeZone), forKey: .startsAtLocal)
        try container.encode(RFC3339.string(from: event.endsAt, in: event.timeZone), forKey: .endsAtLocal)
        try container.encode(event.timeZoneName, forKey: .timeZone)
        try container.encode(event.currency.code, forKey: .currency)
        try container.encode(event.seats.count, forKey: .seatCount)
        try container.encode(RFC3339.string(from: event.createdAt), forKey: .createdAt)
        try container.encode(cancellation == nil ? "active" : "cancelled", forKey: .status)
        guard let cancellation else {
            try container.encodeNil(forKey: .cancellation)
            return
        }
        var nested = container.nestedContainer(keyedBy: CancellationKeys.self, forKey: .cancellation)
        try nested.encode(cancellation.reason, forKey: .reason)
        try nested.encode(cancellation.cancelledBy, forKey: .cancelledBy)
        try nested.encode(RFC3339.string(from: cancellation.cancelledAt), forKey: .cancelledAt)
        try nested.encode(cancellation.completedAt.map { RFC3339.string(from: $0) }, forKey: .completedAt)
        try nested.encode(cancellation.bookingsTotal, forKey: .bookingsTotal)
        try nested.encode(cancellation.bookingsDone, forKey: .bookingsDone)
        try nested.encode(cancellation.bookingsRemaining, forKey: .bookingsRemaining)
        var refunds = nested.nestedContainer(keyedBy: RefundKeys.self, forKey: .refunds)
        try refunds.encode(cancellation.refundsRequested, forKey: .requested)
        try refunds.encode(cancellation.refundsSucceeded, forKey: .succeeded)
        try refunds.encode(cancellation.refundsFailed, forKey: .failed)
    }
}

struct SeatBody: Encodable {
    let seatID: String
    let price: Int64
    let state: SeatState

    enum CodingKeys: String, CodingKey {
        case seatID = "seat_id"
        case price, state
    }
}

struct SeatMapBody: Encodable {
    let eventID: EventID
    let currency: String
    let seats: [SeatBody]

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id"
        case currency, seats
    }
}
