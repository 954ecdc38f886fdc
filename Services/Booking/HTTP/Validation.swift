import Foundation
import Hummingbird
import ServiceKit
import SharedModel

/// Edge validation with DESIGN.md's statuses: a body that is not JSON of the right shape is 400 (the
/// decoder's error); well-formed values that are invalid are 422 `validation_failed` naming the
/// field; an unknown id in the path is 404.
enum Validation {
    static func invalid(_ field: String, _ message: String, details: [String: JSONValue] = [:]) -> APIError {
        var details = details
        details["field"] = .string(field)
        return APIError.unprocessable(.validationFailed, message, details: details)
    }

    static func identifier<Tag>(
        _ text: String, field: String, as _: Identifier<Tag>.Type = Identifier<Tag>.self
    ) throws(APIError)
        -> Identifier<Tag>
    {
        do {
            return try Identifier<Tag>(parsing: text)
        } catch {
            throw invalid(field, "\(field) must be 1 to \(String.maximumIdentifierLength) characters without control characters")
        }
    }

    /// The total of `seats` when the event has every one of them (422 `validation_failed` naming the
    /// unknown seats otherwise) and the payment provider can charge it: 422 `amount_not_chargeable`
    /// otherwise (several seats can add up past the provider's maximum charge), naming the seats.
    static func chargeableTotal(of seats: [SeatID], in event: SellableEvent, rules: ProviderCurrencyRules) throws(APIError) -> Money {
        let total: Money
        switch event.quote(seats) {
        case .total(let sum):
            total = sum
        case .unknownSeats(let unknown):
            throw invalid("seat_ids", "the event has no such seats", details: seatList(unknown))
        case .overflow:
            throw APIError.unprocessable("amount_not_chargeable", "the seats' total price overflows", details: seatList(seats))
        }
        if let problem = rules.problem(charging: total) {
            var details = seatList(seats)
            details["amount"] = .integer(total.amount)
            details["currency"] = .string(total.currency.code)
            throw APIError.unprocessable(
                "amount_not_chargeable", "these seats cost \(total.amount) minor units together: \(problem)", details: details)
        }
        return total
    }

    private static func seatList(_ seats: [SeatID]) -> [String: JSONValue] {
        ["seat_ids": .array(seats.map { .string($0.rawValue) })]
    }

    /// The optional `customer_id` query parameter of a booking read (its booking or saga).
    static func customerFilter(_ request: Request) throws(APIError) -> CustomerID? {
        guard let text = request.uri.queryParameters["customer_id"], !text.isEmpty else { return nil }
        return try identifier(String(text), field: "customer_id")
    }

    /// A non-empty list of at most `maximum` distinct seat ids.
    static func seats(_ texts: [String], field: String = "seat_ids", maximum: Int) throws(APIError) -> [SeatID] {
        guard !texts.isEmpty else { throw invalid(field, "\(field) must not be empty") }
        guard texts.count <= maximum else {
            throw invalid(field, "\(field) may list at most \(maximum) seats", details: ["maximum": .integer(Int64(maximum))])
        }
        // A hold's few seats are compared with each other; an event's thousands go through a set.
        let viaSet = texts.count > 16
        var seen = Set<SeatID>()
        var duplicates: [SeatID] = []
        var seats: [SeatID] = []
        seats.reserveCapacity(texts.count)
        for text in texts {
            let seat: SeatID = try identifier(text, field: field)
            let repeated = viaSet ? !seen.insert(seat).inserted : seats.contains(seat)
            if repeated && !duplicates.contains(seat) { duplicates.append(seat) }
            seats.append(seat)
        }
        guard duplicates.isEmpty else {
            throw invalid(field, "\(field) lists a seat more than once", details: ["seat_ids": .array(duplicates.map { .string($0.rawValue) })])
        }
        return seats
    }

    /// An RFC 3339 timestamp with an explicit offset; naive date-times are refused.
    static func timestamp(_ text: String, field: String) throws(APIError) -> Date {
        do {
            return try RFC3339.date(from: text)
        } catch {
            throw invalid(field, "\(field) must be an RFC 3339 timestamp with an offset, e.g. 2027-03-14T19:30:00-04:00")
        }
    }

    /// A UUID path parameter; a malformed one names no resource (404).
    static func pathUUID(_ context: ServiceRequestContext, _ name: String = "id", resource: String) throws(APIError) -> UUID {
        guard let text = context.parameters.get(name), let uuid = UUID(uuidString: text) else {
            throw APIError.notFound("no \(resource) with this id")
        }
        return uuid
    }
}
