import Foundation
import Messaging
import Postgres
import ServiceKit
import SharedModel
import TestSupport
import Testing
import WebhookSignatures

@testable import Notification

@Suite("NOTIFICATION_SECRETS_KEY re-key: the previous key still opens, rekey-secrets seals again, subscribers keep their secrets")
struct SecretRekeyTests {
    static let newKey = Data(repeating: 9, count: 32)
    static let otherKey = Data(repeating: 3, count: 32)
    static var oldKey: Data { Data(base64Encoded: NotificationHarness.secretsKey) ?? Data() }

    @Test("a box seals with its first key and opens with any of its keys; a secret of a key it does not hold does not open")
    func keyRing() throws {
        let endpoint = UUID()
        let secret = SecretBox.newSecret()
        let sealedOld = try SecretBox(keyBytes: Self.oldKey).seal(secret, endpoint: endpoint)
        let rotating = SecretBox(keys: [Self.newKey, Self.oldKey])
        #expect(throws: Never.self) { try rotating.open(sealedOld, endpoint: endpoint) }
        #expect(throws: SecretBox.Unreadable.self) { try SecretBox(keyBytes: Self.newKey).open(sealedOld, endpoint: endpoint) }
        #expect(throws: SecretBox.Unreadable.self) { try rotating.open(sealedOld, endpoint: UUID()) }
        let resealed = try #require(try rotating.resealed(sealedOld, endpoint: endpoint))
        #expect(try rotating.resealed(resealed, endpoint: endpoint) == nil, "already under the current key")
        let opened = try SecretBox(keyBytes: Self.newKey).open(resealed, endpoint: endpoint)
        let original = try SecretBox(keyBytes: Self.oldKey).open(sealedOld, endpoint: endpoint)
        // The same secret: both sign a message alike.
        let payload = Array("{}".utf8)
        #expect(
            StandardWebhooks.signature(payload: payload, id: "msg_1", timestamp: 1_700_000_000, secret: opened)
                == StandardWebhooks.signature(payload: payload, id: "msg_1", timestamp: 1_700_000_000, secret: original))
    }

    @Test(
        "rekey-secrets: every endpoint's secrets sealed again under the new key (the old key no longer needed), an audit row; a second run changes nothing; a key that opens none changes nothing and names them"
    )
    func rekey() async throws {
        let harness = try await NotificationHarness.make()
        try await harness.run(dispatching: false) { client in
            for index in 0..<3 { _ = try await harness.createEndpoint(client, url: "https://hooks.example.com/\(index)") }
            let endpoint = try #require(
                try await harness.postgres.query("SELECT id FROM notification.endpoints LIMIT 1").first?.decode(UUID.self, at: 0))
            #expect(try await harness.send(client, .post, "/v1/endpoints/\(endpoint.lowercasedString)/rotate-secret", body: [:]).status == .ok)
            let sealedBefore = try await Self.sealed(harness.postgres)
            #expect(sealedBefore.count == 4)

            // A key that opens none of them: nothing written, each named.
            let wrong = try await SecretRekey.run(
                box: SecretBox(keys: [Self.otherKey]), audit: Self.audit, on: harness.postgres)
            #expect(wrong.unreadable.count == 4 && wrong.resealed == 0)
            #expect(try await Self.sealed(harness.postgres) == sealedBefore)

            let first = try await SecretRekey.run(box: SecretBox(keys: [Self.newKey, Self.oldKey]), audit: Self.audit, on: harness.postgres)
            #expect(first == SecretRekey.Result(endpoints: 3, resealed: 4, current: 0, unreadable: []))
            let newOnly = SecretBox(keys: [Self.newKey])
            for secret in try await Self.sealed(harness.postgres) {
                #expect(throws: Never.self) { try newOnly.open(secret.bytes, endpoint: secret.endpoint) }
            }
            let second = try await SecretRekey.run(box: SecretBox(keys: [Self.newKey, Self.oldKey]), audit: Self.audit, on: harness.postgres)
            #expect(second == SecretRekey.Result(endpoints: 3, resealed: 0, current: 4, unreadable: []))
            #expect(try await harness.count("SELECT count(*) FROM platform.audit_log WHERE action = 'secrets.rekeyed'") == 2)
        }
    }

    @Test("NOTIFICATION_SECRETS_KEY_PREVIOUS is read after the current key; a malformed one stops start-up naming it")
    func configuration() throws {
        let base = [
            "DATABASE_URL": "postgres://u@127.0.0.1/db", "REDIS_URL": "redis://127.0.0.1:6379", "ADMIN_TOKEN": "admin",
            "NOTIFICATION_SECRETS_KEY": Self.newKey.base64EncodedString(),
        ]
        let one = try NotificationConfiguration(reader: ConfigurationReader(environment: base))
        #expect(one.secretsKeys == [Self.newKey])
        let two = try NotificationConfiguration(
            reader: ConfigurationReader(environment: base.merging(["NOTIFICATION_SECRETS_KEY_PREVIOUS": Self.oldKey.base64EncodedString()]) { $1 }))
        #expect(two.secretsKeys == [Self.newKey, Self.oldKey])
        #expect {
            try NotificationConfiguration(
                reader: ConfigurationReader(environment: base.merging(["NOTIFICATION_SECRETS_KEY_PREVIOUS": "short"]) { $1 }))
        } throws: { ($0 as? ConfigurationError)?.name == "NOTIFICATION_SECRETS_KEY_PREVIOUS" }
    }

    static let audit = AuditRecord.command(
        service: "notification", operatorName: "test", command: "notification rekey-secrets", action: "secrets.rekeyed", targetID: nil,
        outcome: "completed")

    /// Every stored secret as (endpoint, position, sealed bytes), in order.
    static func sealed(_ postgres: PostgresClient) async throws -> [Sealed] {
        try await postgres.query("SELECT endpoint_id, position, sealed FROM notification.endpoint_secrets ORDER BY endpoint_id, position").map {
            Sealed(endpoint: try $0.decode(UUID.self, at: 0), position: try $0.decode(Int32.self, at: 1), bytes: try $0.decode(Data.self, at: 2))
        }
    }

    struct Sealed: Equatable {
        var endpoint: UUID
        var position: Int32
        var bytes: Data
    }
}
