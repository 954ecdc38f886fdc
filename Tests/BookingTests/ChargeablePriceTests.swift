import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Booking

@Suite("Prices the payment provider can charge, and free seats")
struct ChargeablePriceTests {
    static func event(currency: String, seats: [(String, Int64)]) -> JSONValue {
        let start = RFC3339.string(from: Date().addingTimeInterval(30 * 86_400))
        let end = RFC3339.string(from: Date().addingTimeInterval(30 * 86_400 + 3 * 3600))
        return [
            "name": "Gig", "host_id": "host_free", "starts_at": .string(start), "ends_at": .string(end), "time_zone": "UTC",
            "currency": .string(currency), "seats": .array(seats.map { ["seat_id": .string($0.0), "price": .integer($0.1)] }),
        ]
    }

    @Test("Events with a price the provider cannot charge, or a currency it does not take, are refused with 422 naming the seat")
    func refusedPrices() async throws {
        let harness = try await BookingHarness.make()
        try await harness.run { client in
            let refused: [(String, [(String, Int64)], String, String?)] = [
                ("USD", [("A1", 100), ("A2", 49)], "seats", "A2"),  // below Stripe's 0.50 USD
                ("EUR", [("A1", 100_000_000)], "seats", "A1"),  // over 8 digits
                ("EUR", [("A1", 99_999_999_999)], "seats", "A1"),
                ("KWD", [("A1", 1_005)], "seats", "A1"),  // three-decimal amounts end in 0 at Stripe
                ("ISK", [("A1", 1_000_000)], "seats", "A1"),  // ISK is x100 at Stripe: past 8 digits
                ("XXX", [("A1", 100)], "currency", nil),
                ("XTS", [("A1", 0)], "currency", nil),
            ]
            for (currency, seats, field, seat) in refused {
                let answer = try await client.call(.post, "/v1/events", as: .admin, json: Self.event(currency: currency, seats: seats))
                #expect(answer.status == .unprocessableContent, "\(currency) \(seats)")
                #expect(answer["error"]?["details"]?["field"]?.stringValue == field, "\(currency) \(seats)")
                if let seat { #expect(answer["error"]?["details"]?["seat_ids"] == [.string(seat)], "\(currency) \(seats)") }
            }
            let accepted: [(String, [(String, Int64)])] = [
                ("EUR", [("A1", 0), ("A2", 50)]), ("ISK", [("A1", 999_999)]), ("KWD", [("A1", 1_000)]), ("JPY", [("A1", 50)]),
            ]
            for (currency, seats) in accepted {
                let answer = try await client.call(.post, "/v1/events", as: .admin, json: Self.event(currency: currency, seats: seats))
                #expect(answer.status == .created, "\(currency) \(seats): \(String(decoding: answer.bytes, as: UTF8.self))")
            }
            // Ten seats the provider can each charge, but not together: the hold is refused, nothing held.
            let pricey = try await client.call(
                .post, "/v1/events", as: .admin, json: Self.event(currency: "EUR", seats: (1...10).map { ("P\($0)", 10_000_000) }))
            let event = try #require(pricey["event_id"]?.stringValue)
            let hold = try await client.hold(event, (1...10).map { "P\($0)" }, customer: "whale")
            #expect(hold.status == .unprocessableContent && hold["error"]?["code"] == "amount_not_chargeable")
            #expect(hold["error"]?["details"]?["amount"] == 100_000_000)
            #expect(try await client.hold(event, (1...9).map { "P\($0)" }, customer: "whale").status == .created)
        }
        #expect(try await harness.count("SELECT count(*) FROM booking.events") == 5, "only the valid events were stored")
    }

    @Test("A booking of free seats is confirmed at once with no payment step; cancelling it refunds nothing and frees the seats")
    func freeSeats() async throws {
        let harness = try await BookingHarness.make()
        let postgres = harness.postgres
        @Sendable func count(_ statement: PostgresStatement) async throws -> Int { try await postgres.query(statement)[0].decode(Int.self, at: 0) }
        try await harness.run { client in
            let created = try await client.call(
                .post, "/v1/events", as: .admin, json: Self.event(currency: "EUR", seats: [("F1", 0), ("F2", 0), ("P1", 1500)]))
            let event = try #require(created["event_id"]?.stringValue)
            let booked = try await client.holdAndBook(event, ["F1", "F2"], customer: "guest")
            #expect(booked.status == .created)
            #expect(booked["status"] == "confirmed" && booked["saga_state"] == "confirmed" && booked["amount"] == 0)
            let id = try #require(booked["booking_id"]?.stringValue)
            #expect(try await count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'payment.requested'") == 0)
            let confirmed = try await postgres.query(
                "SELECT envelope::text FROM messaging.outbox WHERE event_type = 'booking.confirmed' AND aggregate_id = \(id)"
            ).map { try EventEnvelope(jsonData: Data(try $0.decode(String.self, at: 0).utf8)).decode(BookingConfirmed.self) }
            #expect(confirmed.count == 1)
            #expect(confirmed.first?.providerRef == nil && confirmed.first?.amount.isZero == true)
            #expect(confirmed.first?.seatIDs.map(\.rawValue) == ["F1", "F2"])
            #expect(try await count("SELECT count(*) FROM booking.sagas WHERE deadline IS NOT NULL") == 0, "nothing to expire")
            let seats = try await client.call(.get, "/v1/events/\(event)/seats")
            let states = Dictionary(
                uniqueKeysWithValues: (seats["seats"]?.arrayValue ?? []).compactMap { seat in
                    seat["seat_id"]?.stringValue.map { ($0, seat["state"]?.stringValue ?? "") }
                })
            #expect(states == ["F1": "sold", "F2": "sold", "P1": "available"])

            let cancelled = try await client.call(.post, "/v1/bookings/\(id)/cancel", json: ["customer_id": "guest"])
            #expect(cancelled.status == .ok && cancelled["status"] == "cancelled")
            #expect(try await count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'refund.requested'") == 0)
            #expect(try await client.hold(event, ["F1", "F2"], customer: "next").status == .created)
        }
    }
}
