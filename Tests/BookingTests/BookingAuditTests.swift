import Foundation
import HTTPTypes
import Messaging
import ServiceKit
import ServiceTestSupport
import SharedModel
import TestSupport
import Testing

@testable import Booking

/// Booking's admin actions in the audit log (the saga resume is checked in SagaCoordinatorTests).
@Suite("Booking audit log")
struct BookingAuditTests {
    static let event: JSONValue = [
        "name": "Gig", "host_id": "h", "starts_at": "2027-05-01T20:00:00+02:00", "ends_at": "2027-05-01T23:00:00+02:00",
        "time_zone": "Europe/Berlin", "currency": "EUR", "seats": [["seat_id": "A1", "price": 100], ["seat_id": "A2", "price": 100]],
    ]

    @Test("POST /v1/events writes one event.created entry (operator, request id, route, target, outcome); a 422 or 403 writes none")
    func eventCreated() async throws {
        let harness = try await BookingHarness.make()
        let postgres = harness.postgres
        try await harness.run { client in
            let created = try await client.call(
                .post, "/v1/events", as: .admin, json: Self.event, headers: [.operatorName: "carol", .requestID: "req-event-1"])
            #expect(created.status == .created)
            let id = try #require(created["event_id"]?.stringValue)
            var invalid = Self.event.objectValue ?? [:]
            invalid["currency"] = "eur"
            #expect(try await client.call(.post, "/v1/events", as: .admin, json: .object(invalid)).status == .unprocessableContent)
            #expect(try await client.call(.post, "/v1/events", as: .client, json: Self.event).status == .forbidden)
            let unnamed = try await client.call(.post, "/v1/events", as: .admin, json: Self.event)
            #expect(unnamed.status == .created)

            let rows = try await AuditProbe.rows(postgres).map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
            #expect(rows.count == 2)
            let row = try #require(rows.first)
            #expect(row["service"] == "booking" && row["operator"] == "carol" && row["request_id"] == "req-event-1")
            #expect(row["route"] == "POST /v1/events" && row["action"] == "event.created" && row["target_id"]?.stringValue == id)
            #expect(row["outcome"] == "created" && row["http_status"]?.integerValue == 201)
            #expect(row["details"]?["seats"]?.integerValue == 2 && row["details"]?["host_id"] == "h")
            #expect(rows.last?["operator"] == "admin" && rows.last?["request_id"] == unnamed.headers[.requestID].map(JSONValue.string))
        }
    }

    @Test("an event whose transaction fails at the audit insert is not created")
    func rollback() async throws {
        let harness = try await BookingHarness.make()
        let repository = PostgresInventoryRepository(postgres: harness.postgres)
        let event = SellableEvent(
            id: EventID(), name: "Gig", hostID: try HostID(parsing: "h"), startsAt: Date(timeIntervalSince1970: 1_900_000_000),
            endsAt: Date(timeIntervalSince1970: 1_900_003_600), timeZone: TimeZone(identifier: "UTC") ?? .current, timeZoneName: "UTC",
            currency: try Currency("EUR"), createdAt: Date(), seats: [.init(id: try SeatID(parsing: "A1"), price: 100)])
        let refused = AuditRecord(
            service: "booking", operatorName: "ops", requestID: "r", route: "POST /v1/events", action: "event.created",
            targetID: event.id.description, outcome: "created", httpStatus: 99)
        await #expect(throws: (any Error).self) { try await repository.create(event, audit: refused) }
        #expect(try await repository.event(event.id) == nil)
        #expect(try await AuditProbe.rows(harness.postgres).isEmpty)
        await harness.shutdown()
    }
}
