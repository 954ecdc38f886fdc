import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Messaging
import NIOCore
import NIOHTTP1
import Postgres
import ProviderSimulator
import Redis
import ServiceLifecycle
import SharedModel
import TestSupport
import Testing

@testable import PaymentsWebhook

/// The payments-webhook service served on a real port with its provider worker on a stream of the test's
/// own, and the provider simulator on another port sending its signed webhooks back to it.
struct ProviderWorld: Sendable {
    let postgres: PostgresClient
    let redis: RedisClient
    let http: HTTPClient
    let stream: String
    let simulatorURL: String
    /// The worker's provider client.
    let provider: StripeProvider

    /// Runs `body` while the simulator, the payments API and the provider worker run; stops them after.
    static func run(_ body: @Sendable (ProviderWorld) async throws -> Void) async throws {
        let simulatorPort = try freePort()
        let paymentsPort = try freePort()
        let apiKey = "sk_test_world"
        let harness = try await PaymentsHarness.make(settings: [
            "PROVIDER_BASE_URL": "http://127.0.0.1:\(simulatorPort)", "PROVIDER_API_KEY": apiKey,
        ])
        var simulatorConfiguration = SimulatorConfiguration(apiKey: apiKey)
        simulatorConfiguration.port = simulatorPort
        simulatorConfiguration.webhookURL = "http://127.0.0.1:\(paymentsPort)/v1/webhooks/stripe"
        simulatorConfiguration.webhookSecret = PaymentsHarness.stripeSecrets[0]
        simulatorConfiguration.webhookRetryDelay = .milliseconds(50)
        let simulator = buildSimulator(configuration: simulatorConfiguration, logger: TestEnvironment.logger)
        let payments = Application(
            router: harness.router, configuration: .init(address: .hostname("127.0.0.1", port: paymentsPort)), logger: TestEnvironment.logger)
        let stream = "stream:booking-test-\(UUID().uuidString.prefix(8).lowercased())"
        let http = StripeProvider.makeHTTPClient()
        let provider = StripeProvider(client: http, configuration: harness.parts.configuration.provider)
        let worker = harness.parts.providerWorker(provider: provider, logger: TestEnvironment.logger) { configuration in
            configuration.stream = stream
            configuration.initialBackoff = .milliseconds(50)
            configuration.maximumBackoff = .milliseconds(200)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: simulator), .init(service: payments), .init(service: worker)], logger: TestEnvironment.logger))
        let world = ProviderWorld(
            postgres: harness.postgres, redis: try RedisClient.forTests(connections: 2), http: http,
            stream: stream, simulatorURL: "http://127.0.0.1:\(simulatorPort)", provider: provider)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await world.waitUntilUp(paymentsPort: paymentsPort)
                try await body(world)
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                await world.close(harness)
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await world.close(harness)
    }

    private func close(_ harness: PaymentsHarness) async {
        try? await http.shutdown()
        await redis.shutdown()
        await harness.shutdown()
    }

    private func waitUntilUp(paymentsPort: Int) async throws {
        for url in ["\(simulatorURL)/healthz", "http://127.0.0.1:\(paymentsPort)/healthz"] {
            _ = try await eventually("\(url) answers") { (try? await self.request(.GET, url))?.status == 200 }
        }
    }

    /// Publishes an envelope on the worker's stream, as the booking service's relay would.
    func publish(_ envelope: EventEnvelope) async throws {
        _ = try await redis.xadd(stream, fields: [(Streams.envelopeField, Array(try envelope.jsonData()))])
    }

    func request(
        _ method: HTTPMethod, _ url: String, json: String? = nil, form: String? = nil, idempotencyKey: String? = nil
    ) async throws
        -> (status: Int, body: JSONValue?)
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if url.contains("/v1/") { request.headers.add(name: "Authorization", value: "Bearer sk_test_world") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: form))
        }
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        let response = try await http.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: bytes)))
    }

    /// Creates an intent at the simulator and pays it (which sends `payment_intent.succeeded` to us).
    func paidIntent(amount: Int64, booking: BookingID) async throws -> String {
        let created = try await request(
            .POST, "\(simulatorURL)/v1/payment_intents", form: "amount=\(amount)&currency=eur&metadata%5Bbooking_id%5D=\(booking)")
        let reference = try #require(created.body?["id"]?.stringValue)
        let paid = try await request(.POST, "\(simulatorURL)/simulator/payment_intents/\(reference)/succeed", json: "{}")
        #expect(paid.status == 200)
        return reference
    }

    /// The simulator's log of `/v1` calls on `path`.
    func calls(to path: String) async throws -> [JSONValue] {
        let log = try await request(.GET, "\(simulatorURL)/simulator/requests")
        return (log.body?.arrayValue ?? log.body?["requests"]?.arrayValue ?? []).filter { $0["path"]?.stringValue == path }
    }

    func outbox(type: String) async throws -> [EventEnvelope] {
        try await postgres.query("SELECT envelope::text FROM messaging.outbox WHERE event_type = \(type) ORDER BY position").map {
            try EventEnvelope(jsonData: Data(try $0.decode(String.self, at: 0).utf8))
        }
    }
}

/// Polls `condition` every 50 ms for up to `timeout`; fails the test naming `what` when it never holds.
@discardableResult
func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("timed out waiting until \(what)")
    return false
}

@Suite("Provider worker against the provider simulator")
struct ProviderWorkerTests {
    static func envelope(_ event: some DomainEvent) throws -> EventEnvelope {
        try EventEnvelope(event: event, occurredAt: Date(), sequence: 1, correlationID: "test", causationID: nil, producer: .booking)
    }

    @Test("payment.requested delivered twice: one intent at the provider with the booking id in its metadata, one payment.intent_created")
    func intentCreatedOnce() async throws {
        try await ProviderWorld.run { world in
            let booking = BookingID()
            let key = "payment:\(booking)"
            let requested = PaymentRequested(
                bookingID: booking, amount: Money(amount: 4200, currency: .eur), customerID: try CustomerID("cus_1"), idempotencyKey: key)
            let first = try Self.envelope(requested)
            try await world.publish(first)
            try await world.publish(first)
            // A second envelope for the same booking (e.g. re-emitted) changes nothing either.
            try await world.publish(try Self.envelope(requested))
            try await eventually("payment.intent_created is in the outbox") { try await !world.outbox(type: "payment.intent_created").isEmpty }
            try await Task.sleep(for: .milliseconds(500))
            let created = try await world.outbox(type: "payment.intent_created")
            #expect(created.count == 1)
            let event = try #require(try created.first?.decode(PaymentIntentCreated.self))
            #expect(event.bookingID == booking && event.provider == "stripe" && event.providerRef.hasPrefix("pi_") && !event.clientSecret.isEmpty)
            #expect(created.first?.causationID == first.id.description)
            let intent = try await world.request(.GET, "\(world.simulatorURL)/v1/payment_intents/\(event.providerRef)")
            #expect(intent.body?["metadata"]?["booking_id"]?.stringValue == booking.description)
            #expect(intent.body?["amount"]?.integerValue == 4200 && intent.body?["currency"] == "eur")
            let calls = try await world.calls(to: "/v1/payment_intents")
            #expect(!calls.isEmpty && calls.allSatisfy { $0["idempotency_key"]?.stringValue == key })
            #expect(try await world.postgres.count("SELECT count(*) FROM payments.payment_intents WHERE booking_id = \(booking.rawValue)") == 1)
        }
    }

    @Test("refund.requested: a refusing provider yields refund.failed; one failing 3 times yields one refund and later refund.succeeded")
    func refunds() async throws {
        try await ProviderWorld.run { world in
            let refusedBooking = BookingID()
            let refusedIntent = try await world.paidIntent(amount: 3000, booking: refusedBooking)
            let refusal = try await world.request(
                .POST, "\(world.simulatorURL)/simulator/faults", json: #"{"operation":"refunds","mode":"refuse","count":null}"#)
            #expect(refusal.status == 200)
            let refused = RefundRequested(
                refundID: RefundID(), bookingID: refusedBooking, providerRef: refusedIntent, amount: Money(amount: 3000, currency: .eur),
                reason: .latePayment, idempotencyKey: "refund:refused")
            try await world.publish(try Self.envelope(refused))
            try await eventually("refund.failed is in the outbox") { try await !world.outbox(type: "refund.failed").isEmpty }
            let failed = try #require(try await world.outbox(type: "refund.failed").first?.decode(RefundFailed.self))
            #expect(failed.refundID == refused.refundID && failed.bookingID == refusedBooking && failed.error?.contains("refund_refused") == true)

            _ = try await world.request(.DELETE, "\(world.simulatorURL)/simulator/faults")
            let transient = try await world.request(
                .POST, "\(world.simulatorURL)/simulator/faults", json: #"{"operation":"refunds","mode":"transient","count":3}"#)
            #expect(transient.status == 200)
            let booking = BookingID()
            let intent = try await world.paidIntent(amount: 5000, booking: booking)
            let requested = RefundRequested(
                refundID: RefundID(), bookingID: booking, providerRef: intent, amount: Money(amount: 5000, currency: .eur),
                reason: .customerCancellation,
                idempotencyKey: "refund:transient")
            try await world.publish(try Self.envelope(requested))
            try await eventually("refund.succeeded is in the outbox") {
                try await world.outbox(type: "refund.succeeded").contains { try $0.decode(RefundSucceeded.self).refundID == requested.refundID }
            }
            let succeeded = try #require(try await world.outbox(type: "refund.succeeded").first?.decode(RefundSucceeded.self))
            #expect(succeeded.bookingID == booking && succeeded.providerRef == intent && succeeded.amount.amount == 5000)
            let calls = try await world.calls(to: "/v1/refunds").filter { $0["idempotency_key"]?.stringValue == "refund:transient" }
            #expect(calls.count == 4)
            #expect(calls.filter { $0["fault"] == true }.count == 3)
            let list = try await world.request(.GET, "\(world.simulatorURL)/v1/refunds?payment_intent=\(intent)")
            #expect(list.body?["data"]?.arrayValue?.count == 1)
            // refund.succeeded comes from the simulator's charge.refunded webhook, which may be stored
            // before the worker commits its own row of the accepted refund.
            try await eventually("the accepted refund is recorded") {
                try await world.postgres.count("SELECT count(*) FROM payments.refunds WHERE outcome = 'accepted'") >= 1
            }
            #expect(try await world.postgres.count("SELECT count(*) FROM payments.refunds WHERE outcome = 'accepted'") == 1)
            #expect(try await world.postgres.count("SELECT count(*) FROM payments.refunds WHERE outcome = 'refused'") == 1)
        }
    }

    @Test("a rate-limited provider (429 with Retry-After: 1, twice) is waited out: the refund goes through in the handler's first attempt")
    func rateLimitedProviderIsWaitedOut() async throws {
        try await ProviderWorld.run { world in
            let booking = BookingID()
            let intent = try await world.paidIntent(amount: 2000, booking: booking)
            let fault = try await world.request(
                .POST, "\(world.simulatorURL)/simulator/faults", json: #"{"operation":"refunds","mode":"rate_limited","count":2}"#)
            #expect(fault.status == 200)
            let requested = RefundRequested(
                refundID: RefundID(), bookingID: booking, providerRef: intent, amount: Money(amount: 2000, currency: .eur),
                reason: .eventCancellation, idempotencyKey: "refund:throttled")
            let started = ContinuousClock.now
            try await world.publish(try Self.envelope(requested))
            try await eventually("the accepted refund is recorded") {
                try await world.postgres.count(
                    "SELECT count(*) FROM payments.refunds WHERE refund_id = \(requested.refundID.rawValue) AND outcome = 'accepted'") == 1
            }
            let calls = try await world.calls(to: "/v1/refunds").filter { $0["idempotency_key"]?.stringValue == "refund:throttled" }
            #expect(calls.map { $0["status"]?.integerValue } == [429, 429, 200])
            // Each 429 said Retry-After: 1, and the client waited it out before calling again.
            #expect(ContinuousClock.now - started >= .seconds(2))
            // Waiting out the provider's rate limit is not a failure of the handler.
            #expect(try await world.postgres.count("SELECT count(*) FROM messaging.attempts") == 0)
        }
    }

    @Test("a resumed refund (lookup_existing) uses a refund the provider already made; with none, it refunds once under its new key")
    func resumedRefundLooksUpExisting() async throws {
        try await ProviderWorld.run { world in
            // The first attempt went through at the provider, but the saga never heard of it.
            let booking = BookingID()
            let intent = try await world.paidIntent(amount: 2500, booking: booking)
            let original = try await world.request(
                .POST, "\(world.simulatorURL)/v1/refunds", form: "payment_intent=\(intent)&amount=2500", idempotencyKey: "refund:original")
            let existingID = try #require(original.body?["id"]?.stringValue)
            let resumed = RefundRequested(
                refundID: RefundID(), bookingID: booking, providerRef: intent, amount: Money(amount: 2500, currency: .eur), reason: .operatorResume,
                idempotencyKey: "refund:resume-1", lookupExisting: true)
            try await world.publish(try Self.envelope(resumed))
            try await eventually("refund.succeeded of the resumed refund is in the outbox") {
                try await world.outbox(type: "refund.succeeded").contains { try $0.decode(RefundSucceeded.self).refundID == resumed.refundID }
            }
            #expect(try await world.calls(to: "/v1/refunds").allSatisfy { $0["idempotency_key"]?.stringValue != "refund:resume-1" })
            let list = try await world.request(.GET, "\(world.simulatorURL)/v1/refunds?payment_intent=\(intent)")
            #expect(list.body?["data"]?.arrayValue?.count == 1, "no second refund at the provider")
            let row = try await world.postgres.query(
                "SELECT provider_refund_id, outcome FROM payments.refunds WHERE refund_id = \(resumed.refundID.rawValue)")
            #expect(try row.first?.decode(String.self, at: 0) == existingID && (try row.first?.decode(String.self, at: 1)) == "accepted")

            // Nothing refunded yet: the resumed request refunds, once, under its own key.
            let unrefunded = BookingID()
            let unrefundedIntent = try await world.paidIntent(amount: 4000, booking: unrefunded)
            let fresh = RefundRequested(
                refundID: RefundID(), bookingID: unrefunded, providerRef: unrefundedIntent, amount: Money(amount: 4000, currency: .eur),
                reason: .operatorResume, idempotencyKey: "refund:resume-fresh", lookupExisting: true)
            try await world.publish(try Self.envelope(fresh))
            try await eventually("refund.succeeded of the fresh refund is in the outbox") {
                try await world.outbox(type: "refund.succeeded").contains { try $0.decode(RefundSucceeded.self).refundID == fresh.refundID }
            }
            let freshList = try await world.request(.GET, "\(world.simulatorURL)/v1/refunds?payment_intent=\(unrefundedIntent)")
            #expect(freshList.body?["data"]?.arrayValue?.count == 1)
            #expect(try await world.calls(to: "/v1/refunds").filter { $0["idempotency_key"]?.stringValue == "refund:resume-fresh" }.count == 1)
        }
    }

    @Test("provider errors are classified: unknown payment 404 refused, wrong key 401 and an unreachable provider retryable")
    func errorClassification() async throws {
        try await ProviderWorld.run { world in
            let refund = RefundRequest(
                refundID: RefundID(), bookingID: nil, paymentReference: "pi_unknown", amount: Money(amount: 100, currency: .eur),
                idempotencyKey: "refund:unknown")
            await #expect(
                throws: PaymentProviderError.refused(status: 404, code: "resource_missing", message: "No such payment_intent: 'pi_unknown'")
            ) {
                try await world.provider.createRefund(refund)
            }
            var wrongKey = world.provider.api.configuration
            wrongKey.apiKey = "sk_test_wrong"
            let unauthorized = StripeProvider(client: world.http, configuration: wrongKey)
            do throws(PaymentProviderError) {
                _ = try await unauthorized.createRefund(refund)
                Issue.record("a wrong key must fail")
            } catch {
                guard case .unavailable(let reason) = error else { throw error }
                #expect(reason.contains("401"))
            }
            var unreachable = world.provider.api.configuration
            unreachable.baseURL = "http://127.0.0.1:9"
            do throws(PaymentProviderError) {
                _ = try await StripeProvider(client: world.http, configuration: unreachable).createRefund(refund)
                Issue.record("an unreachable provider must fail")
            } catch {
                guard case .unavailable = error else { throw error }
            }
        }
    }
}
