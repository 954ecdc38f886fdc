import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import ProviderSimulator

let testAPIKey = "sk_test_simulator_key"
let testWebhookSecret = "whsec_test_simulator_secret"

/// Runs `test` against a whole simulator (router test client; the webhook sender service runs), with
/// retries shortened to milliseconds.
func withSimulator<Value: Sendable>(
    webhookURL: String? = nil, attempts: Int = 5, _ test: @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    var configuration = SimulatorConfiguration(apiKey: testAPIKey)
    configuration.webhookURL = webhookURL
    configuration.webhookSecret = webhookURL == nil ? nil : testWebhookSecret
    configuration.webhookAttempts = attempts
    configuration.webhookRetryDelay = .milliseconds(5)
    configuration.webhookTimeout = .seconds(2)
    var logger = Logger(label: "provider-simulator-tests")
    logger.logLevel = .error
    return try await buildSimulator(configuration: configuration, logger: logger).test(.router, test)
}

/// A form-encoded `/v1` POST with the test key (or `apiKey`).
func post(
    _ client: any TestClientProtocol, _ uri: String, form: String, idempotencyKey: String? = nil, apiKey: String? = testAPIKey
) async throws -> TestResponse {
    var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
    if let apiKey { headers[.authorization] = "Bearer \(apiKey)" }
    if let idempotencyKey { headers[.idempotencyKey] = idempotencyKey }
    return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: form))
}

/// An authenticated `/v1` GET.
func get(_ client: any TestClientProtocol, _ uri: String, apiKey: String? = testAPIKey) async throws -> TestResponse {
    var headers: HTTPFields = [:]
    if let apiKey { headers[.authorization] = "Bearer \(apiKey)" }
    return try await client.execute(uri: uri, method: .get, headers: headers)
}

/// A control API call with an optional JSON body.
func control(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, json: String? = nil) async throws -> TestResponse {
    try await client.execute(
        uri: uri, method: method, headers: [.contentType: "application/json"], body: json.map { ByteBuffer(string: $0) })
}

/// Creates a payment intent for `amount` USD cents with `metadata[booking_id]`, returning its id.
func createIntent(_ client: any TestClientProtocol, amount: Int = 2500, bookingID: String = "bk_123") async throws -> String {
    let response = try await post(client, "/v1/payment_intents", form: "amount=\(amount)&currency=usd&metadata[booking_id]=\(bookingID)")
    #expect(response.status == .ok)
    return try #require(JSONObject(response.body)["id"] as? String)
}

/// Creates an intent and marks it succeeded (no webhook unless configured).
func createSucceededIntent(_ client: any TestClientProtocol, amount: Int = 2500, bookingID: String = "bk_123") async throws -> String {
    let id = try await createIntent(client, amount: amount, bookingID: bookingID)
    let response = try await control(client, .post, "/simulator/payment_intents/\(id)/succeed")
    #expect(response.status == .ok)
    return id
}

/// A parsed JSON object, read with subscripts.
struct JSONObject {
    let dictionary: [String: Any]

    init(_ buffer: ByteBuffer) {
        self.init(bytes: Array(buffer.readableBytesView))
    }

    init(bytes: [UInt8]) {
        dictionary = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
    }

    init(_ dictionary: [String: Any]) {
        self.dictionary = dictionary
    }

    subscript(key: String) -> Any? { dictionary[key] }

    /// A nested object (`object("error")`), empty when absent.
    func object(_ key: String) -> JSONObject {
        JSONObject(dictionary[key] as? [String: Any] ?? [:])
    }

    /// A nested array of objects.
    func objects(_ key: String) -> [JSONObject] {
        (dictionary[key] as? [[String: Any]] ?? []).map(JSONObject.init)
    }
}

/// A JSON array of objects (control API lists).
func jsonArray(_ buffer: ByteBuffer) -> [JSONObject] {
    let value = try? JSONSerialization.jsonObject(with: Data(Array(buffer.readableBytesView)))
    return (value as? [[String: Any]] ?? []).map(JSONObject.init)
}

/// Polls `condition` every 10 ms for up to `timeout`.
func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// A `delivery` object as `status/attempts/delivered`, e.g. `200/1/true` (`nil` status as `null`).
func summary(_ delivery: JSONObject) -> String {
    let status = (delivery["status"] as? Int).map(String.init) ?? "null"
    return "\(status)/\((delivery["attempts"] as? Int).map(String.init) ?? "?")/\((delivery["delivered"] as? Bool).map(String.init) ?? "?")"
}
