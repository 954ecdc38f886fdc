import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Messaging
import ServiceKit
import ServiceTestSupport
import SharedModel
import TestSupport
import Testing

@testable import PaymentsWebhook

/// payments-webhook's admin actions are the dead-letter ones: audited under its own service name.
@Suite("Payments audit log")
struct PaymentsAuditTests {
    @Test("a dead-letter discard writes one entry for payments-webhook; an unknown id (404) writes none; the listing is admin only")
    func discardIsAudited() async throws {
        let harness = try await PaymentsHarness.make()
        let envelope = try EventEnvelope(
            event: BookingExpired(bookingID: BookingID()), occurredAt: Date(), sequence: 1, correlationID: "c", causationID: nil, producer: .booking)
        let id = try await harness.postgres.withTransaction { transaction in
            try DeadLetterStore.record(
                kind: .review, stream: "stream:booking", consumer: "payments", envelope: envelope, error: "odd", attempts: 1, firstFailedAt: Date(),
                in: transaction)
        }
        let postgres = harness.postgres
        try await harness.run { client in
            let headers: HTTPFields = [
                .authorization: "Bearer \(PaymentsHarness.adminToken)", .operatorName: "erin", .requestID: "req-dlq-1",
                .contentType: "application/json",
            ]
            let body = ByteBuffer(string: #"{"reason": "test data"}"#)
            try await client.execute(uri: "/v1/admin/dead-letters/\(UUID())/discard", method: .post, headers: headers, body: body) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/v1/admin/dead-letters/\(id)/discard", method: .post, headers: headers, body: body) {
                #expect($0.status == .ok)
            }
            let rows = try await AuditProbe.rows(postgres).map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
            #expect(rows.count == 1)
            #expect(rows.first?["service"] == "payments-webhook" && rows.first?["operator"] == "erin" && rows.first?["request_id"] == "req-dlq-1")
            #expect(rows.first?["route"] == "POST /v1/admin/dead-letters/{id}/discard" && rows.first?["action"] == "dead_letter.discarded")
            #expect(rows.first?["target_id"]?.stringValue == id.uuidString.lowercased() && rows.first?["outcome"] == "discarded")
            let listed = try await client.admin("/v1/admin/audit")
            #expect(listed.status == .ok && listed["entries"]?.arrayValue?.count == 1)
            #expect(try await client.admin("/v1/admin/audit", token: nil).status == .unauthorized)
        }
    }
}
