import Foundation
import HTTPTypes
import Messaging
import ServiceKit
import ServiceTestSupport
import SharedModel
import TestSupport
import Testing

@testable import Notification

/// The notification service's admin actions in the audit log: one entry each, in the action's transaction, never a secret.
@Suite("Notification audit log")
struct NotificationAuditTests {
    static func decode(_ row: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(row.utf8))
    }

    @Test("create, pause, rotate, delete each write one entry with operator, request id, route, action, target, outcome; no secret")
    func endpointActions() async throws {
        let harness = try await NotificationHarness.make()
        try await harness.run(dispatching: false) { client in
            let given: HTTPFields = [.operatorName: "alice@example.com", .requestID: "req-create-1"]
            let created = try await harness.send(
                client, .post, "/v1/endpoints", body: ["url": "http://127.0.0.1:9/hook"], headers: given)
            #expect(created.status == .created)
            let id = try #require(created["endpoint_id"]?.stringValue)
            let secret = try #require(created["secret"]?.stringValue)
            let paused = try await harness.send(client, .post, "/v1/endpoints/\(id)/pause", headers: [.requestID: "req-pause-1"])
            #expect(paused.status == .ok)
            let rotated = try await harness.send(client, .post, "/v1/endpoints/\(id)/rotate-secret", body: ["grace_seconds": 60])
            #expect(rotated.status == .ok)
            let newSecret = try #require(rotated["secret"]?.stringValue)
            // Refused actions change nothing and write nothing.
            #expect(try await harness.send(client, .post, "/v1/endpoints/\(UUID())/pause").status == .notFound)
            #expect(try await harness.send(client, .post, "/v1/endpoints", body: ["url": "ftp://x"]).status == .unprocessableContent)
            #expect(
                try await harness.send(client, .post, "/v1/endpoints/\(id)/rotate-secret", body: ["grace_seconds": -1]).status
                    == .unprocessableContent)
            #expect(try await harness.send(client, .delete, "/v1/endpoints/\(id)").status == .noContent)

            let rows = try await AuditProbe.rows(harness.postgres)
            #expect(rows.count == 4)
            for row in rows {
                #expect(!row.contains(secret) && !row.contains(newSecret), "an audit row holds a secret: \(row)")
                #expect(!row.contains("whsec_"))
            }
            let decoded = try rows.map(Self.decode)
            #expect(
                decoded.map { $0["action"]?.stringValue } == ["endpoint.created", "endpoint.paused", "endpoint.secret_rotated", "endpoint.deleted"])
            let create = decoded[0]
            #expect(create["service"]?.stringValue == "notification")
            #expect(create["operator"]?.stringValue == "alice@example.com")
            #expect(create["request_id"]?.stringValue == "req-create-1")
            #expect(create["route"]?.stringValue == "POST /v1/endpoints")
            #expect(create["target_id"]?.stringValue == id)
            #expect(create["outcome"]?.stringValue == "created")
            #expect(create["http_status"]?.integerValue == 201)
            let pause = decoded[1]
            #expect(pause["operator"]?.stringValue == "admin")
            #expect(pause["request_id"]?.stringValue == "req-pause-1")
            #expect(pause["route"]?.stringValue == "POST /v1/endpoints/{id}/pause")
            #expect(pause["target_id"]?.stringValue == id)
            #expect(pause["outcome"]?.stringValue == "paused")
            #expect(decoded[2]["details"]?["grace_seconds"]?.integerValue == 60)
            #expect(decoded[3]["route"]?.stringValue == "DELETE /v1/endpoints/{id}")
            #expect(decoded[3]["http_status"]?.integerValue == 204)

            // The service's own listing shows them, newest first.
            let listed = try await harness.send(client, .get, "/v1/admin/audit?target_id=\(id)")
            #expect(listed.status == .ok)
            #expect(listed["entries"]?.arrayValue?.compactMap { $0["action"]?.stringValue }.first == "endpoint.deleted")
            #expect(try await harness.send(client, .get, "/v1/admin/audit", token: nil).status == .unauthorized)
        }
    }

    @Test("a delivery retry and an endpoint replay write one entry each with their counts")
    func deliveryActions() async throws {
        let harness = try await NotificationHarness.make()
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "http://127.0.0.1:9/hook")
            let at = harness.clock.now.addingTimeInterval(1)
            try await harness.fanOut([try NotificationHarness.event(type: "booking.confirmed", occurredAt: at)])
            let delivery = try #require(
                try await harness.postgres.query("SELECT id FROM notification.deliveries WHERE endpoint_id = \(endpoint.id)").first?.decode(
                    UUID.self, at: 0))
            let retried = try await harness.send(client, .post, "/v1/deliveries/\(delivery)/retry", headers: [.operatorName: "ops"])
            #expect(retried.status == .accepted)
            #expect(try await harness.send(client, .post, "/v1/deliveries/\(UUID())/retry").status == .notFound)
            let window: JSONValue = [
                "since": .string(RFC3339.string(from: at.addingTimeInterval(-60))), "until": .string(RFC3339.string(from: at.addingTimeInterval(60))),
                "dry_run": true,
            ]
            #expect(try await harness.send(client, .post, "/v1/endpoints/\(endpoint.id)/replay", body: window).status == .ok)

            let rows = try await AuditProbe.rows(harness.postgres).map(Self.decode)
            let retry = try #require(rows.first { $0["action"] == "delivery.retried" })
            #expect(rows.filter { $0["action"] == "delivery.retried" }.count == 1)
            #expect(retry["operator"] == "ops" && retry["target_id"]?.stringValue == delivery.uuidString.lowercased())
            #expect(retry["route"] == "POST /v1/deliveries/{id}/retry" && retry["http_status"]?.integerValue == 202)
            #expect(retry["details"]?["endpoint_id"]?.stringValue == endpoint.id.uuidString.lowercased())
            let replay = try #require(rows.first { $0["action"] == "endpoint.replayed" })
            #expect(
                replay["outcome"] == "dry_run" && replay["details"]?["matched"]?.integerValue == 1 && replay["details"]?["queued"]?.integerValue == 0)
        }
    }

    @Test("an endpoint change whose transaction fails at the audit insert is rolled back too")
    func rollback() async throws {
        let harness = try await NotificationHarness.make()
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "http://127.0.0.1:9/hook")
            let before = try await AuditProbe.rows(harness.postgres).count
            // A record the table's CHECK refuses (HTTP status 99): the pause shares its transaction.
            let refused = AuditRecord(
                service: "notification", operatorName: "ops", requestID: "r", route: "POST /v1/endpoints/{id}/pause", action: "endpoint.paused",
                targetID: endpoint.id.uuidString.lowercased(), outcome: "paused", httpStatus: 99)
            await #expect(throws: (any Error).self) {
                try await harness.parts.endpoints.setStatus(endpoint.id, to: .paused, audit: refused)
            }
            #expect(try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)")["status"]?.stringValue == "enabled")
            #expect(try await AuditProbe.rows(harness.postgres).count == before)
        }
    }
}
