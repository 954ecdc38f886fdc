import Foundation
import HTTPTypes
import HummingbirdTesting
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Booking

@Suite("Booking API: inventory, holds, bookings, cancellation, validation")
struct BookingAPITests {
    @Test("An event in America/New_York just after the spring DST change reads back with the right UTC and local times")
    func daylightSavingTime() async throws {
        let harness = try await BookingHarness.make()
        try await harness.run { client in
            // 2027-03-14: at 02:00 EST the clocks jump to 03:00 EDT (07:00Z).
            let after = try await client.createEvent(seats: 1, startsAt: "2027-03-14T03:30:00-04:00", timeZone: "America/New_York")
            let event = try await client.call(.get, "/v1/events/\(after)")
            #expect(event.status == .ok)
            #expect(event["starts_at"]?.stringValue == "2027-03-14T07:30:00.000Z")
            #expect(event["starts_at_local"]?.stringValue == "2027-03-14T03:30:00.000-04:00")
            #expect(event["ends_at_local"]?.stringValue == "2027-03-14T06:30:00.000-04:00")
            #expect(event["time_zone"]?.stringValue == "America/New_York")
            // Given in UTC, the same instant renders identically; one hour earlier is still EST.
            let before = try await client.createEvent(seats: 1, startsAt: "2027-03-14T06:30:00Z", timeZone: "America/New_York")
            let earlier = try await client.call(.get, "/v1/events/\(before)")
            #expect(earlier["starts_at_local"]?.stringValue == "2027-03-14T01:30:00.000-05:00")
        }
    }

    @Test("A naive date-time, a bad zone or currency, and bad seat lists are refused with 422 naming the field")
    func eventValidation() async throws {
        let harness = try await BookingHarness.make()
        try await harness.run { client in
            func event(_ changes: [String: JSONValue]) -> JSONValue {
                var body: [String: JSONValue] = [
                    "name": "Gig", "host_id": "h", "starts_at": "2027-05-01T20:00:00+02:00", "ends_at": "2027-05-01T23:00:00+02:00",
                    "time_zone": "Europe/Berlin", "currency": "EUR", "seats": [["seat_id": "A1", "price": 100]],
                ]
                body.merge(changes) { _, new in new }
                return .object(body)
            }
            let cases: [([String: JSONValue], String)] = [
                (["starts_at": "2027-05-01T20:00:00"], "starts_at"),
                (["ends_at": "2027-05-01T19:00:00+02:00"], "ends_at"),
                (["time_zone": "Mars/Olympus"], "time_zone"),
                (["currency": "eur"], "currency"),
                (["currency": "EURO"], "currency"),
                (["seats": []], "seats"),
                (["seats": [["seat_id": "A1", "price": 1], ["seat_id": "A1", "price": 2]]], "seats"),
                (["seats": [["seat_id": "A1", "price": -1]]], "seats"),
                (["name": ""], "name"),
            ]
            for (change, field) in cases {
                let answer = try await client.call(.post, "/v1/events", as: .admin, json: event(change))
                #expect(answer.status == .unprocessableContent, "\(change)")
                #expect(answer.json?["error"]?["details"]?["field"]?.stringValue == field, "\(change)")
            }
            let fractionalPrice =
                #"{"name":"Gig","host_id":"h","starts_at":"2027-05-01T20:00:00Z","ends_at":"2027-05-01T23:00:00Z","time_zone":"UTC","currency":"EUR","seats":[{"seat_id":"A1","price":1.5}]}"#
            #expect(try await client.call(.post, "/v1/events", as: .admin, raw: fractionalPrice).status == .badRequest)
            #expect(try await client.call(.post, "/v1/events", as: .admin, raw: "{\"name\":").status == .badRequest)
            #expect(try await client.call(.post, "/v1/events", as: .client, json: event([:])).status == .forbidden)
            #expect(try await client.call(.post, "/v1/events", as: .anonymous, json: event([:])).status == .unauthorized)
            #expect(
                try await client.call(.post, "/v1/events", as: .admin, json: event(["starts_at": "0000-01-01T00:00:00+23:59"])).status
                    == .unprocessableContent)
            // Names are limited in Unicode scalars (what Postgres counts), not in what the eye sees.
            let combining = String(repeating: "e\u{301}", count: 101)
            #expect(try await client.call(.post, "/v1/events", as: .admin, json: event(["name": .string(combining)])).status == .unprocessableContent)
            #expect(try await client.call(.post, "/v1/events", as: .admin, json: event([:])).status == .created)
            let utc = try await client.call(.post, "/v1/events", as: .admin, json: event(["time_zone": "UTC"]))
            #expect(utc.status == .created)
            #expect(utc["time_zone"]?.stringValue == "UTC")
            #expect(utc["starts_at_local"]?.stringValue == "2027-05-01T18:00:00.000+00:00")
        }
        #expect(try await harness.count("SELECT count(*) FROM booking.events") == 2, "only the valid events were stored")
    }

    @Test("Holds and bookings validate their input with the statuses of DESIGN.md, and change nothing when refused")
    func holdAndBookingValidation() async throws {
        let harness = try await BookingHarness.make(settings: ["MAX_SEATS_PER_HOLD": "4"])
        try await harness.run { client in
            let event = try await client.createEvent(seats: 10)
            let refusals: [(Answer, HTTPResponse.Status, String)] = [
                (try await client.hold(event, [], customer: "c1"), .unprocessableContent, "validation_failed"),
                (try await client.hold(event, ["S1", "S2", "S3", "S4", "S5"], customer: "c1"), .unprocessableContent, "validation_failed"),
                (try await client.hold(event, ["S1", "S1"], customer: "c1"), .unprocessableContent, "validation_failed"),
                (try await client.hold(event, ["S1", "NOPE"], customer: "c1"), .unprocessableContent, "validation_failed"),
                (try await client.hold(UUID().uuidString, ["S1"], customer: "c1"), .unprocessableContent, "validation_failed"),
                (try await client.hold("not-a-uuid", ["S1"], customer: "c1"), .unprocessableContent, "validation_failed"),
                (try await client.hold(event, ["S1"], customer: ""), .unprocessableContent, "validation_failed"),
                (
                    try await client.call(.post, "/v1/holds", json: ["event_id": .string(event), "seat_ids": "S1", "customer_id": "c1"]), .badRequest,
                    "bad_request"
                ),
                (try await client.call(.post, "/v1/holds", raw: "not json"), .badRequest, "bad_request"),
                (try await client.call(.post, "/v1/holds", raw: #"["S1"]"#), .badRequest, "bad_request"),
                (
                    try await client.call(.post, "/v1/holds", json: ["event_id": .string(event), "seat_ids": ["S1", 2], "customer_id": "c1"]),
                    .badRequest, "bad_request"
                ),
                (
                    try await client.call(.post, "/v1/holds", json: ["event_id": 7, "seat_ids": ["S1"], "customer_id": "c1"]), .badRequest,
                    "bad_request"
                ),
                (try await client.call(.post, "/v1/holds", json: ["event_id": .string(event), "seat_ids": ["S1"]]), .badRequest, "bad_request"),
                (try await client.call(.post, "/v1/holds", as: .anonymous, json: ["event_id": .string(event)]), .unauthorized, "unauthorized"),
                (try await client.call(.post, "/v1/holds", raw: String(repeating: "x", count: 70_000)), .contentTooLarge, "payload_too_large"),
                (try await client.call(.post, "/v1/bookings", json: ["hold_id": "x", "customer_id": "c1"]), .badRequest, "bad_request"),
                (try await client.book("forged", customer: "c1"), .unprocessableContent, "validation_failed"),
                (try await client.call(.get, "/v1/events/\(UUID())"), .notFound, "not_found"),
                (try await client.call(.get, "/v1/events/nope/seats"), .notFound, "not_found"),
                (try await client.call(.get, "/v1/bookings/\(UUID())"), .notFound, "not_found"),
                (try await client.call(.delete, "/v1/holds/nope?customer_id=c1"), .notFound, "not_found"),
            ]
            for (answer, status, code) in refusals {
                #expect(answer.status == status, "\(String(decoding: answer.bytes, as: UTF8.self))")
                #expect(answer.errorCode == code, "\(String(decoding: answer.bytes, as: UTF8.self))")
            }
            let unknown = try await client.hold(event, ["S1", "NOPE", "ALSO"], customer: "c1")
            #expect(unknown.seatIDs == ["NOPE", "ALSO"])
            // Nothing was held by any refused request.
            let seats = try await client.call(.get, "/v1/events/\(event)/seats")
            #expect(seats["seats"]?.arrayValue?.allSatisfy { $0["state"]?.stringValue == "available" } == true)
            // Members the request does not define are ignored, as before.
            let extra = try await client.call(
                .post, "/v1/holds", json: ["event_id": .string(event), "seat_ids": ["S9"], "customer_id": "c1", "note": ["x": 1]])
            #expect(extra.status == .created, "\(String(decoding: extra.bytes, as: UTF8.self))")
            #expect(extra["seat_ids"] == ["S9"])
        }
        #expect(try await harness.count("SELECT count(*) FROM booking.bookings") == 0)
        #expect(try await harness.count("SELECT count(*) FROM booking.idempotency_keys") == 1, "only the refused forged hold is remembered")
    }

    @Test("Hold, book, read, list and cancel: seats move available -> held -> available, events go to the outbox")
    func lifecycle() async throws {
        let harness = try await BookingHarness.make()
        try await harness.run { client in
            let event = try await client.createEvent(seats: 6)
            let hold = try await client.hold(event, ["S2", "S1"], customer: "alice")
            #expect(hold.status == .created)
            #expect(hold.seatIDs == ["S2", "S1"])
            let holdID = try #require(hold["hold_id"]?.stringValue)
            let expiresAt = try RFC3339.date(from: try #require(hold["expires_at"]?.stringValue))
            #expect(abs(expiresAt.timeIntervalSinceNow - 600) < 30)

            // Someone else cannot take a held seat: 409 naming exactly the unavailable ones.
            let conflict = try await client.hold(event, ["S3", "S1", "S2"], customer: "bob")
            #expect(conflict.status == .conflict)
            #expect(conflict.errorCode == "seats_unavailable")
            #expect(conflict.seatIDs == ["S1", "S2"])
            // Nor release it, nor book it.
            #expect(try await client.call(.delete, "/v1/holds/\(holdID)?customer_id=bob").status == .forbidden)
            #expect(try await client.book(holdID, customer: "bob").errorCode == "hold_not_owned")

            let booked = try await client.book(holdID, customer: "alice")
            #expect(booked.status == .created)
            #expect(booked["status"]?.stringValue == "pending_payment")
            #expect(booked["saga_state"]?.stringValue == "awaiting_payment")
            #expect(booked["amount"]?.integerValue == Int64(1001 + 1002))
            #expect(booked["currency"]?.stringValue == "EUR")
            #expect(booked.seatIDs == ["S1", "S2"])
            #expect(booked["payment"] == .null)
            let bookingID = try #require(booked["booking_id"]?.stringValue)
            let due = try RFC3339.date(from: try #require(booked["payment_due_at"]?.stringValue))
            #expect(abs(due.timeIntervalSinceNow - 900) < 30)

            // A converted hold cannot be released or booked again.
            #expect(try await client.call(.delete, "/v1/holds/\(holdID)?customer_id=alice").errorCode == "hold_booked")
            #expect(try await client.book(holdID, customer: "alice").errorCode == "hold_booked")

            let read = try await client.call(.get, "/v1/bookings/\(bookingID)")
            #expect(read.status == .ok)
            #expect(read["hold_id"]?.stringValue == holdID)
            #expect(read["created_at"]?.stringValue != nil)
            #expect(read["cancelled_at"] == .null)

            var states = try await seatStates(client, event)
            #expect(states["S1"] == "held" && states["S2"] == "held" && states["S3"] == "available")

            // A second booking, then the customer's list in two pages.
            let second = try await client.holdAndBook(event, ["S3"], customer: "alice")
            #expect(second.status == .created)
            let page1 = try await client.call(.get, "/v1/customers/alice/bookings?limit=1")
            #expect(page1["bookings"]?.arrayValue?.first?["booking_id"] == second["booking_id"])
            let cursor = try #require(page1["next_cursor"]?.stringValue)
            let page2 = try await client.call(.get, "/v1/customers/alice/bookings?limit=1&cursor=\(cursor)")
            #expect(page2["bookings"]?.arrayValue?.first?["booking_id"]?.stringValue == bookingID)
            #expect(page2["next_cursor"] == .null)
            #expect(try await client.call(.get, "/v1/customers/alice/bookings?cursor=garbage").status == .badRequest)
            // Cursors crafted with impossible times or malformed parts are refused, not passed to Postgres.
            for forged in CraftedCursors.all {
                let refused = try await client.call(.get, "/v1/customers/alice/bookings?cursor=\(forged)")
                #expect(refused.status == .badRequest && refused["error"]?["code"]?.stringValue == "invalid_cursor", "\(forged)")
            }
            #expect(try await client.call(.get, "/v1/customers/nobody/bookings")["bookings"]?.arrayValue?.isEmpty == true)

            // Cancellation: owner only (the admin may cancel any); repeating it changes nothing.
            #expect(try await client.call(.post, "/v1/bookings/\(bookingID)/cancel", json: ["customer_id": "bob"]).status == .forbidden)
            #expect(try await client.call(.post, "/v1/bookings/\(bookingID)/cancel", json: [:]).status == .unprocessableContent)
            let cancelled = try await client.call(.post, "/v1/bookings/\(bookingID)/cancel", json: ["customer_id": "alice"])
            #expect(cancelled.status == .ok)
            #expect(cancelled["status"]?.stringValue == "cancelled")
            #expect(cancelled["saga_state"]?.stringValue == "cancelled")
            #expect(cancelled["cancelled_at"]?.stringValue != nil)
            let again = try await client.call(.post, "/v1/bookings/\(bookingID)/cancel", json: ["customer_id": "alice"])
            #expect(again.status == .ok)
            #expect(again["cancelled_at"] == cancelled["cancelled_at"])
            let byAdmin = try await client.call(
                .post, "/v1/bookings/\(try #require(second["booking_id"]?.stringValue))/cancel", as: .admin, json: [:])
            #expect(byAdmin["status"]?.stringValue == "cancelled")

            states = try await seatStates(client, event)
            #expect(states.values.allSatisfy { $0 == "available" }, "\(states)")
            // The released seats can be held and booked again.
            #expect(try await client.holdAndBook(event, ["S1", "S2", "S3"], customer: "carol").status == .created)
        }
        let events = try await harness.postgres.query(
            "SELECT event_type, count(*) FROM messaging.outbox GROUP BY event_type ORDER BY event_type")
        let counts = try Dictionary(uniqueKeysWithValues: events.map { (try $0.decode(String.self, at: 0), try $0.decode(Int64.self, at: 1)) })
        #expect(counts == ["booking.requested": 3, "payment.requested": 3, "booking.cancelled": 2])
        #expect(try await harness.count("SELECT count(*) FROM booking.saga_steps WHERE step = 'booking_cancelled'") == 2)
    }

    @Test("Seats in a confirmed booking are sold; cancelling one without a payment reference refunds nothing and frees its seats")
    func soldSeats() async throws {
        let harness = try await BookingHarness.make()
        let postgres = harness.postgres
        try await harness.run { client in
            let event = try await client.createEvent(seats: 3)
            let booked = try await client.holdAndBook(event, ["S1"], customer: "dana")
            let id = try #require(booked["booking_id"]?.stringValue)
            try await confirm(id, postgres)
            let states = try await seatStates(client, event)
            #expect(states == ["S1": "sold", "S2": "available", "S3": "available"])
            let cancelled = try await client.call(.post, "/v1/bookings/\(id)/cancel", json: ["customer_id": "dana"])
            #expect(cancelled.status == .ok && cancelled["status"] == "cancelled")
            #expect(try await seatStates(client, event) == ["S1": "available", "S2": "available", "S3": "available"])
        }
    }

    @Test("The same booking request repeated 20 times at once with one key yields one booking and 20 identical answers")
    func idempotentConversion() async throws {
        let harness = try await BookingHarness.make()
        try await harness.run { client in
            let event = try await client.createEvent(seats: 4)
            let hold = try #require(try await client.hold(event, ["S1", "S2"], customer: "erin")["hold_id"]?.stringValue)
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for _ in 0..<20 { group.addTask { try await client.book(hold, customer: "erin", key: "key-1") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.count == 20)
            #expect(answers.allSatisfy { $0.status == .created })
            #expect(Set(answers.map(\.bytes)).count == 1, "every answer has the same body")
            #expect(answers.filter { $0.headers[.idempotentReplayed] == nil }.count == 1, "one request did the work")
            // The same key with another body is refused; a new key for the converted hold is a conflict.
            let reused = try await client.book(hold, customer: "frank", key: "key-1")
            #expect(reused.status == .unprocessableContent)
            #expect(reused.errorCode == "idempotency_key_reused")
            #expect(try await client.book(hold, customer: "erin", key: "key-2").status == .conflict)
        }
        #expect(try await harness.count("SELECT count(*) FROM booking.bookings") == 1)
        #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'booking.requested'") == 1)
    }

    @Test("A hold that expires is unbookable, and the same seats can then be held by someone else")
    func expiredHold() async throws {
        let harness = try await BookingHarness.make(settings: ["HOLD_TTL": "1s"])
        try await harness.run { client in
            let event = try await client.createEvent(seats: 2)
            let hold = try #require(try await client.hold(event, ["S1", "S2"], customer: "gina")["hold_id"]?.stringValue)
            try await Task.sleep(for: .milliseconds(1500))
            let late = try await client.book(hold, customer: "gina")
            #expect(late.status == .conflict)
            #expect(late.errorCode == "hold_expired")
            #expect(try await client.call(.delete, "/v1/holds/\(hold)?customer_id=gina").status == .notFound)
            #expect(try await client.hold(event, ["S2"], customer: "hank").status == .created)
        }
        #expect(try await harness.count("SELECT count(*) FROM booking.bookings") == 0)
    }

    @Test("Canonically equivalent seat names are one seat: a hold on one spelling blocks the other")
    func canonicalSeatNames() async throws {
        let harness = try await BookingHarness.make()
        try await harness.run { client in
            let created = try await client.call(
                .post, "/v1/events", as: .admin,
                json: [
                    "name": "Café", "host_id": "h", "starts_at": "2027-05-01T20:00:00Z", "ends_at": "2027-05-01T23:00:00Z", "time_zone": "UTC",
                    "currency": "EUR", "seats": [["seat_id": "\u{E9}", "price": 100]],
                ])
            let event = try #require(created["event_id"]?.stringValue)
            #expect(try await client.hold(event, ["\u{E9}"], customer: "c1").status == .created)
            let second = try await client.hold(event, ["e\u{301}"], customer: "c2")
            #expect(second.status == .conflict)
            #expect(second.seatIDs == ["\u{E9}"])
        }
    }

    @Test("Releasing a hold frees its seats at once; only the owner's hold releases them")
    func release() async throws {
        let harness = try await BookingHarness.make()
        try await harness.run { client in
            let event = try await client.createEvent(seats: 2)
            let hold = try #require(try await client.hold(event, ["S1"], customer: "ivy")["hold_id"]?.stringValue)
            #expect(try await client.call(.delete, "/v1/holds/\(hold)").status == .badRequest)
            #expect(try await client.call(.delete, "/v1/holds/\(hold)?customer_id=ivy").status == .noContent)
            #expect(try await client.call(.delete, "/v1/holds/\(hold)?customer_id=ivy").status == .notFound)
            #expect(try await client.hold(event, ["S1"], customer: "jon").status == .created)
        }
    }
}

/// Each seat's state from the seat map.
func seatStates(_ client: any TestClientProtocol, _ event: String) async throws -> [String: String] {
    let answer = try await client.call(.get, "/v1/events/\(event)/seats")
    var states: [String: String] = [:]
    for seat in answer["seats"]?.arrayValue ?? [] {
        if let id = seat["seat_id"]?.stringValue, let state = seat["state"]?.stringValue { states[id] = state }
    }
    return states
}

/// Marks a booking confirmed the way the saga will (until the Saga issue, tests confirm directly).
func confirm(_ booking: String, _ postgres: PostgresClient) async throws {
    guard let id = UUID(uuidString: booking) else { throw HarnessError("not a booking id: \(booking)") }
    try await postgres.withTransaction { transaction in
        try transaction.query(
            "UPDATE booking.bookings SET status = 'confirmed', confirmed_at = now(), updated_at = now() WHERE booking_id = \(id)")
        try transaction.query("UPDATE booking.sagas SET state = 'confirmed', version = version + 1, deadline = NULL WHERE booking_id = \(id)")
    }
}
