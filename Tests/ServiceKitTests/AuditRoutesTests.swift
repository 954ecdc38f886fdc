import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Messaging
import Migrations
import Postgres
import ServiceKit
import SharedModel
import TestSupport
import Testing

/// The audit log as every service mounts it: the dead-letter actions write one entry each in their own
/// transaction, and `GET /v1/admin/audit` lists them newest first with filters and a cursor.
@Suite("Audit log: dead-letter actions and GET /v1/admin/audit")
struct AuditRoutesTests {
    /// A migrated database with two failure entries.
    func seeded() async throws -> (ServiceApplication, Router<ServiceRequestContext>, [UUID]) {
        let url = try await TestDatabase.create(prefix: "audit")
        let (app, router) = try makeTestApplication(databaseURL: url)
        try await Migrator(client: app.postgres, logger: TestEnvironment.logger).migrate()
        let ids = try await app.postgres.withTransaction { transaction in
            try (0..<2).map { index in
                let envelope = try EventEnvelope(
                    event: BookingExpired(bookingID: BookingID()), occurredAt: Date(), sequence: 1, correlationID: "c", causationID: nil,
                    producer: .booking)
                return try DeadLetterStore.record(
                    kind: .failure, stream: "stream:booking", consumer: "consumer-\(index)", envelope: envelope, error: "down", attempts: 8,
                    firstFailedAt: Date(), in: transaction)
            }
        }
        return (app, router, ids)
    }

    static func rows(_ postgres: PostgresClient) async throws -> [JSONValue] {
        try await postgres.query("SELECT row_to_json(a)::text FROM platform.audit_log a ORDER BY occurred_at, id").map {
            try JSONDecoder().decode(JSONValue.self, from: Data(try $0.decode(String.self, at: 0).utf8))
        }
    }

    static func json(_ response: TestResponse) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: response.body))
    }

    @Test("resolve writes one entry with operator, request id, route, action, target and outcome; a 409 and a 400 write none")
    func resolveIsAudited() async throws {
        let (app, router, ids) = try await seeded()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        let headers: HTTPFields = [
            .authorization: "Bearer admin-secret", .operatorName: "ops@example.com", .requestID: "req-audit-1", .contentType: "application/json",
        ]
        try await Application(router: router).test(.router) { client in
            try await client.execute(
                uri: "/v1/admin/dead-letters/\(ids[0])/resolve", method: .post, headers: headers, body: ByteBuffer(string: #"{"note": "done"}"#)
            ) { #expect($0.status == .ok) }
            // Already resolved (409) and no X-Operator (400): nothing changed, nothing audited.
            try await client.execute(
                uri: "/v1/admin/dead-letters/\(ids[0])/resolve", method: .post, headers: headers, body: ByteBuffer(string: #"{"note": "again"}"#)
            ) { #expect($0.status == .conflict) }
            var anonymous = headers
            anonymous[.operatorName] = nil
            try await client.execute(
                uri: "/v1/admin/dead-letters/\(ids[1])/discard", method: .post, headers: anonymous, body: ByteBuffer(string: #"{"reason": "x"}"#)
            ) { #expect($0.status == .badRequest) }
        }
        let rows = try await Self.rows(app.postgres)
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row["service"]?.stringValue == "router-test")
        #expect(row["operator"]?.stringValue == "ops@example.com")
        #expect(row["request_id"]?.stringValue == "req-audit-1")
        #expect(row["route"]?.stringValue == "POST /v1/admin/dead-letters/{id}/resolve")
        #expect(row["action"]?.stringValue == "dead_letter.resolved")
        #expect(row["target_id"]?.stringValue == ids[0].uuidString.lowercased())
        #expect(row["outcome"]?.stringValue == "resolved")
        #expect(row["http_status"]?.integerValue == 200)
    }

    @Test("an action whose transaction fails leaves neither its change nor an entry (the entry shares the transaction)")
    func rollbackLeavesNoEntry() async throws {
        let (app, _, ids) = try await seeded()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        let store = DeadLetterStore(postgres: app.postgres)
        // An HTTP status the table refuses: the insert fails after the entry's UPDATE in the same transaction.
        let refused = AuditRecord(
            service: "router-test", operatorName: "ops", requestID: "r", route: "POST /x", action: "dead_letter.discarded",
            targetID: ids[1].uuidString.lowercased(), outcome: "discarded", httpStatus: 99)
        await #expect(throws: (any Error).self) { try await store.discard(id: ids[1], reason: "test", operatorName: "ops", audit: refused) }
        #expect(try await store.entry(id: ids[1])?.status == .open)
        #expect(try await Self.rows(app.postgres).isEmpty)
        // The same action with a valid record commits both.
        #expect(try await store.discard(id: ids[1], reason: "test", operatorName: "ops", audit: refused.with(httpStatus: 200)) == .done)
        #expect(try await store.entry(id: ids[1])?.status == .discarded)
        #expect(try await Self.rows(app.postgres).count == 1)
    }

    @Test("GET /v1/admin/audit: admin only, this service's entries newest first, filters, cursor paging, bad filters 400")
    func listing() async throws {
        let (app, router, _) = try await seeded()
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        try await app.postgres.withTransaction { transaction in
            for index in 0..<5 {
                let record = AuditRecord(
                    service: "router-test", operatorName: index.isMultiple(of: 2) ? "alice" : "bob", requestID: "r\(index)",
                    route: "POST /v1/things", action: index < 3 ? "thing.created" : "thing.deleted", targetID: "t\(index)", outcome: "created",
                    httpStatus: 201)
                try AuditLog.record(record, clock: WallClock { base.addingTimeInterval(Double(index)) }, in: transaction)
            }
            try AuditLog.record(
                AuditRecord(
                    service: "other", operatorName: "carol", requestID: nil, route: "cli: x", action: "thing.created", targetID: nil,
                    outcome: "created", httpStatus: nil), clock: WallClock { base }, in: transaction)
        }
        let admin: HTTPFields = [.authorization: "Bearer admin-secret"]
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/v1/admin/audit", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/admin/audit", method: .get, headers: [.authorization: "Bearer key-one"]) {
                #expect($0.status == .forbidden)
            }
            func targets(_ query: String) async throws -> (targets: [String], next: String?) {
                try await client.execute(uri: "/v1/admin/audit\(query)", method: .get, headers: admin) { response in
                    #expect(response.status == .ok, "\(query): \(String(buffer: response.body))")
                    let body = Self.json(response)
                    let entries = body?["entries"]?.arrayValue ?? []
                    return (entries.compactMap { $0["target_id"]?.stringValue }, body?["next_cursor"]?.stringValue)
                }
            }
            #expect(try await targets("").targets == ["t4", "t3", "t2", "t1", "t0"])
            #expect(try await targets("?operator=alice").targets == ["t4", "t2", "t0"])
            #expect(try await targets("?action=thing.deleted").targets == ["t4", "t3"])
            #expect(try await targets("?target_id=t1").targets == ["t1"])
            let from = RFC3339.string(from: base.addingTimeInterval(1))
            let until = RFC3339.string(from: base.addingTimeInterval(3))
            #expect(try await targets("?from=\(from)&until=\(until)").targets == ["t2", "t1"])
            #expect(try await targets("?service=other").targets.isEmpty)
            #expect(try await targets("?service=other&operator=carol").next == nil)
            // Paging: 2 + 2 + 1, no entry twice.
            let first = try await targets("?limit=2")
            #expect(first.targets == ["t4", "t3"])
            let second = try await targets("?limit=2&cursor=\(try #require(first.next))")
            #expect(second.targets == ["t2", "t1"])
            let third = try await targets("?limit=2&cursor=\(try #require(second.next))")
            #expect(third.targets == ["t0"] && third.next == nil)
            // The whole entry.
            try await client.execute(uri: "/v1/admin/audit?target_id=t0", method: .get, headers: admin) { response in
                let entry = Self.json(response)?["entries"]?.arrayValue?.first
                #expect(
                    Set(entry?.objectValue?.keys.map { $0 } ?? []) == [
                        "id", "service", "operator", "occurred_at", "request_id", "route", "action", "target_id", "outcome", "http_status", "details",
                    ])
                #expect(entry?["occurred_at"]?.stringValue == RFC3339.string(from: base))
                #expect(entry?["details"] == .object([:]))
            }
            for bad in ["limit=0", "limit=201", "limit=x", "cursor=nope", "from=yesterday", "until=2026-13-01T00:00:00Z"] {
                try await client.execute(uri: "/v1/admin/audit?\(bad)", method: .get, headers: admin) { response in
                    #expect(response.status == .badRequest, "\(bad)")
                }
            }
        }
    }
}
