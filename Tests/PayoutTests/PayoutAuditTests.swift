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

@testable import Payout

/// Payout's admin actions in the audit log: host settings and starting a run.
@Suite("Payout audit log")
struct PayoutAuditTests {
    static func call(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, body: String?, headers extra: HTTPFields = [:]
    ) async throws -> (status: HTTPResponse.Status, json: JSONValue?, requestID: String?) {
        var headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(PayoutHarness.adminToken)"]
        headers.append(contentsOf: extra)
        return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            (response.status, try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: response.body)), response.headers[.requestID])
        }
    }

    @Test("PUT /v1/hosts/{id} and POST /v1/payout-runs write one entry each; a 422 writes none; no payout account in an entry")
    func hostAndRun() async throws {
        let harness = try await PayoutHarness.make()
        let postgres = harness.postgres
        try await harness.run { client in
            let put = try await Self.call(
                client, .put, "/v1/hosts/host_a", body: #"{"payout_account": "acct_secretish1", "fee_bps": 700}"#,
                headers: [.operatorName: "dave", .requestID: "req-host-1"])
            #expect(put.status == .ok)
            let again = try await Self.call(client, .put, "/v1/hosts/host_a", body: #"{"payout_account": "acct_secretish2"}"#)
            #expect(again.status == .ok)
            #expect(try await Self.call(client, .put, "/v1/hosts/host_a", body: #"{"payout_account": "nope"}"#).status == .unprocessableContent)
            let run = try await Self.call(client, .post, "/v1/payout-runs", body: nil, headers: [.requestID: "req-run-1"])
            #expect(run.status == .accepted)
            let runID = try #require(run.json?["run_id"]?.stringValue ?? run.json?["id"]?.stringValue)

            let texts = try await AuditProbe.rows(postgres)
            #expect(texts.count == 3)
            #expect(texts.allSatisfy { !$0.contains("acct_secretish") })
            let rows = try texts.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
            // The service's clock dates the entries (a test clock here: the same instant), so find them by operator and action.
            #expect(rows.map { $0["action"]?.stringValue ?? "" }.sorted() == ["host.updated", "host.updated", "payout_run.started"])
            let first = try #require(rows.first { $0["action"] == "host.updated" && $0["operator"] == "dave" })
            let second = try #require(rows.first { $0["action"] == "host.updated" && $0["operator"] == "admin" })
            let started = try #require(rows.first { $0["action"] == "payout_run.started" })
            #expect(first["service"] == "payout" && first["request_id"] == "req-host-1")
            #expect(first["route"] == "PUT /v1/hosts/{id}" && first["target_id"] == "host_a" && first["outcome"] == "created")
            #expect(first["details"]?["fee_bps"]?.integerValue == 700 && first["http_status"]?.integerValue == 200)
            #expect(second["outcome"] == "updated" && second["details"]?["fee_bps"] == .null)
            #expect(second["request_id"]?.stringValue == again.requestID)
            #expect(started["route"] == "POST /v1/payout-runs" && started["target_id"]?.stringValue == runID)
            #expect(started["outcome"] == "created" && started["http_status"]?.integerValue == 202 && started["request_id"] == "req-run-1")
        }
    }

    @Test("host settings whose transaction fails at the audit insert are not stored")
    func rollback() async throws {
        let harness = try await PayoutHarness.make()
        defer { Task { await harness.shutdown() } }
        let refused = AuditRecord(
            service: "payout", operatorName: "ops", requestID: "r", route: "PUT /v1/hosts/{id}", action: "host.updated", targetID: "host_b",
            outcome: "updated", httpStatus: 99)
        await #expect(throws: (any Error).self) {
            try await HostStore.put("host_b", account: "acct_b1", feeBasisPoints: nil, now: Date(), audit: refused, on: harness.postgres)
        }
        #expect(try await HostStore.exists("host_b", on: harness.postgres) == false)
        #expect(try await AuditProbe.rows(harness.postgres).isEmpty)
    }
}
