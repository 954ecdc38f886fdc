import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Migrations
import Postgres
import Redis
import ServiceKit
import ServiceTestSupport
import SharedModel
import TestSupport
import Testing
import WebhookSignatures

@testable import PaymentsWebhook

/// The payments-webhook router over a fresh, migrated database, driven in-process.
struct PaymentsHarness {
    static let adminToken = "admin-token"
    /// The configured Stripe secrets: the current one and the one being rotated out.
    static let stripeSecrets = ["whsec_current_test_secret", "whsec_previous_test_secret"]
    static let eventsSecretText = "whsec_" + Data("internal-payment-events-secret".utf8).base64EncodedString()
    static var eventsSecret: StandardWebhookSecret { StandardWebhookSecret(eventsSecretText)! }

    let app: ServiceApplication
    let parts: PaymentsParts
    let router: Router<ServiceRequestContext>
    let databaseURL: String
    /// A separate client for assertions and fixtures.
    let postgres: PostgresClient

    static func make(server: String? = nil, redisURL: String? = nil, settings extra: [String: String] = [:]) async throws -> PaymentsHarness {
        let url = try await ServiceHarness.migratedDatabase(prefix: "payments", on: server)
        let environment = try ServiceHarness.environment(
            databaseURL: url, redisURL: redisURL, adminToken: adminToken,
            settings: [
                "STRIPE_WEBHOOK_SECRETS": stripeSecrets.joined(separator: ","), "PAYMENT_EVENTS_SECRETS": eventsSecretText,
                "PROVIDER_API_KEY": "sk_test_harness", "PROVIDER_BASE_URL": "http://127.0.0.1:9", "TRUST_FORWARDED_FOR": "true",
            ], extra: extra)
        let configuration = try PaymentsConfiguration(reader: ConfigurationReader(environment: environment))
        let app = ServiceApplication(settings: configuration.service, logger: TestEnvironment.logger)
        let parts = PaymentsParts(app: app, configuration: configuration)
        let router = parts.makeRouter()
        return PaymentsHarness(app: app, parts: parts, router: router, databaseURL: url, postgres: try TestDatabase.client(url: url))
    }

    /// Runs `body` with a client of the router (in-process, or `.live` on a local port), then closes every connection.
    func run(testing: TestingSetup = .router, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await ServiceHarness.run(router, app: app, testing: testing, body)
    }

    func shutdown() async {
        await ServiceHarness.shutdown(app)
    }

    func count(_ statement: PostgresStatement, file: String = #fileID, line: Int = #line) async throws -> Int {
        try await postgres.count(statement, file: file, line: line)
    }

    /// The outbox envelopes of `type`, oldest first.
    func outbox(type: String) async throws -> [EventEnvelope] {
        try await postgres.query("SELECT envelope::text FROM messaging.outbox WHERE event_type = \(type) ORDER BY position").map {
            try EventEnvelope(jsonData: Data(try $0.decode(String.self, at: 0).utf8))
        }
    }
}

/// One answer: status, JSON body and headers.
struct Answer: Sendable {
    let status: HTTPResponse.Status
    let json: JSONValue?
    let headers: HTTPFields

    var errorCode: String? { json?["error"]?["code"]?.stringValue }
    subscript(key: String) -> JSONValue? { json?[key] }
}

/// Stripe-style and Standard Webhooks test deliveries.
enum Deliveries {
    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    /// A Stripe event of `type` whose `data.object` is `object`.
    static func stripeEvent(id: String = "evt_\(UUID().uuidString.lowercased())", type: String, object: JSONValue, created: Int64 = now) -> [UInt8] {
        json([
            "id": .string(id), "object": "event", "api_version": "2024-06-20", "created": .integer(created), "type": .string(type),
            "livemode": false, "data": ["object": object],
        ])
    }

    static func paymentIntent(
        id: String = "pi_\(UUID().uuidString.prefix(8).lowercased())", amount: Int64 = 5000, received: Int64? = nil, currency: String = "usd",
        bookingID: String? = UUID().uuidString.lowercased(), failure: String? = nil
    ) -> JSONValue {
        var metadata: [String: JSONValue] = [:]
        if let bookingID { metadata["booking_id"] = .string(bookingID) }
        return [
            "id": .string(id), "object": "payment_intent", "amount": .integer(amount), "amount_received": .integer(received ?? amount),
            "currency": .string(currency), "metadata": .object(metadata),
            "last_payment_error": failure.map { ["code": .string($0), "message": "declined"] } ?? .null,
        ]
    }

    static func json(_ value: JSONValue) -> [UInt8] {
        Array((try? JSONEncoder().encode(value)) ?? Data())
    }

    static func stripeHeaders(_ body: [UInt8], secret: String = PaymentsHarness.stripeSecrets[0], timestamp: Int64 = now) -> HTTPFields {
        [.stripeSignature: StripeSignature.header(payload: body, secret: secret, timestamp: timestamp), .contentType: "application/json"]
    }

    static func standardHeaders(
        _ body: [UInt8], id: String = "msg_\(UUID().uuidString.lowercased())", secret: StandardWebhookSecret = PaymentsHarness.eventsSecret,
        timestamp: Int64 = now
    ) -> HTTPFields {
        [
            .webhookID: id, .webhookTimestamp: String(timestamp),
            .webhookSignature: StandardWebhooks.signature(payload: body, id: id, timestamp: timestamp, secret: secret),
            .contentType: "application/json",
        ]
    }
}

extension TestClientProtocol {
    /// POSTs raw bytes with `headers`, optionally from source `from` (`X-Forwarded-For`).
    func deliver(_ path: String, body: [UInt8], headers: HTTPFields, from source: String = "203.0.113.1") async throws -> Answer {
        var headers = headers
        headers[.forwardedFor] = source
        return try await execute(uri: path, method: .post, headers: headers, body: ByteBuffer(bytes: body)) { response in
            Answer(
                status: response.status, json: try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: response.body)), headers: response.headers
            )
        }
    }

    func stripe(_ body: [UInt8], headers: HTTPFields? = nil, from source: String = "203.0.113.1") async throws -> Answer {
        try await deliver("/v1/webhooks/stripe", body: body, headers: headers ?? Deliveries.stripeHeaders(body), from: source)
    }

    func paymentEvent(_ body: [UInt8], headers: HTTPFields? = nil, from source: String = "203.0.113.1") async throws -> Answer {
        try await deliver("/v1/payment-events", body: body, headers: headers ?? Deliveries.standardHeaders(body), from: source)
    }

    func admin(_ uri: String, token: String? = PaymentsHarness.adminToken) async throws -> Answer {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: .get, headers: headers) { response in
            Answer(
                status: response.status, json: try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: response.body)), headers: response.headers
            )
        }
    }
}
