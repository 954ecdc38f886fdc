import Foundation
import Glibc
import HummingbirdTesting
import Messaging
import NIOCore
import Postgres
import Redis
import SharedModel
import TestSupport
import Testing

@Suite("Payments over real processes: payments-webhook and the provider simulator")
struct PaymentsFlowTests {
    @Test("payment.requested -> an intent at the simulator -> paid -> signed webhook -> payment.succeeded on stream:payments")
    func intentPaidAndReported() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let url = try await TestDatabase.create(prefix: "e2e_payments", on: servers.databaseURL)
            let migrate = try ServiceProcess.start("payments-webhook", arguments: ["migrate"], environment: ["DATABASE_URL": url])
            #expect(await migrate.child.termination(within: .seconds(30)) == .exited(0), "\(migrate.output)")

            let simulatorPort = try freePort()
            let paymentsPort = try freePort()
            let secret = "whsec_e2e_stripe_secret"
            let simulator = try ServiceProcess.start(
                "provider-simulator",
                environment: [
                    "PORT": String(simulatorPort), "PROVIDER_API_KEY": "sk_test_e2e", "STRIPE_WEBHOOK_SECRET": secret,
                    "WEBHOOK_URL": "http://127.0.0.1:\(paymentsPort)/v1/webhooks/stripe",
                ], port: simulatorPort)
            let payments = try ServiceProcess.start(
                "payments-webhook",
                environment: [
                    "DATABASE_URL": url, "REDIS_URL": servers.redisURL, "PORT": String(paymentsPort), "ADMIN_TOKEN": "admin",
                    "STRIPE_WEBHOOK_SECRETS": secret, "PAYMENT_EVENTS_SECRETS": "whsec_ZTJl", "PROVIDER_API_KEY": "sk_test_e2e",
                    "PROVIDER_BASE_URL": "http://127.0.0.1:\(simulatorPort)", "LOG_LEVEL": "info",
                ], port: paymentsPort)
            defer {
                Task {
                    await payments.child.kill()
                    await simulator.child.kill()
                }
            }
            #expect(await waitFor("/healthz", port: simulatorPort, status: 200)?.status == 200, "\(simulator.output)")
            #expect(await waitFor("/readyz", port: paymentsPort, status: 200)?.status == 200, "\(payments.output)")

            // The booking service's relay would publish this; here the test does.
            let redis = try RedisClient.forTests(url: servers.redisURL, connections: 2)
            defer { Task { await redis.shutdown() } }
            let booking = BookingID()
            let requested = PaymentRequested(
                bookingID: booking, amount: Money(amount: 7300, currency: .eur), customerID: try CustomerID("cus_e2e"),
                idempotencyKey: "payment:\(booking)")
            let envelope = try EventEnvelope(
                event: requested, occurredAt: Date(), sequence: 1, correlationID: "e2e", causationID: nil, producer: .booking)
            _ = try await redis.xadd(Streams.booking, fields: [(Streams.envelopeField, Array(try envelope.jsonData()))])

            let postgres = try TestDatabase.client(url: url, connections: 1)
            defer { Task { await postgres.shutdown() } }
            var reference: String?
            let deadline = ContinuousClock.now + .seconds(15)
            while reference == nil, ContinuousClock.now < deadline {
                reference = try await postgres.query("SELECT provider_ref FROM payments.payment_intents WHERE booking_id = $1", [booking.rawValue])
                    .first.map { try $0.decode(String.self, at: 0) }
                if reference == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let intent = try #require(reference, "no intent recorded: \(payments.output)")

            let client = TestClient(host: "127.0.0.1", port: simulatorPort, configuration: .init(timeout: .seconds(10)))
            client.connect()
            defer { Task { try? await client.shutdown() } }
            let paid = try await client.post(
                "/simulator/payment_intents/\(intent)/succeed", headers: [.contentType: "application/json"], body: ByteBuffer(string: "{}"))
            let answer = paid.body.map { String(buffer: $0) } ?? ""
            #expect(paid.status == .ok, "\(answer)")
            #expect(answer.contains(#""delivered":true"#), "\(answer)")

            // Both events reach Redis through the service's outbox relay.
            var types: [String] = []
            while ContinuousClock.now < deadline + .seconds(10) {
                types = try await redis.xrange("stream:payments").compactMap { entry in
                    guard let text = entry.string(Streams.envelopeField), let event = try? EventEnvelope(jsonData: Data(text.utf8)),
                        event.aggregateID == booking.description
                    else { return nil }
                    return event.type
                }
                if types.count >= 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(types == ["payment.intent_created", "payment.succeeded"])

            payments.child.send(SIGTERM)
            simulator.child.send(SIGTERM)
            #expect(await payments.child.termination(within: .seconds(5)) == .exited(0))
            #expect(await simulator.child.termination(within: .seconds(5)) == .exited(0))
        }
    }
}
