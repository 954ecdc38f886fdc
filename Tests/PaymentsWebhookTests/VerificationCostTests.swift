import Foundation
import HTTPTypes
import HummingbirdTesting
import ServiceKit
import SharedModel
import TestSupport
import Testing
import WebhookSignatures

@testable import PaymentsWebhook

@Suite("Webhook verification cost is bounded")
struct VerificationCostTests {
    /// A correctly signed delivery of an unmapped type, padded to `size` bytes.
    static func paddedDelivery(size: Int) -> [UInt8] {
        let padding = String(repeating: "a", count: size)
        let body = Deliveries.stripeEvent(type: "customer.updated", object: ["id": "cus_1", "object": "customer", "description": .string(padding)])
        return body
    }

    @Test("signature headers over 4 KiB are refused with 400 invalid_signature, even when correctly signed")
    func oversizedHeaders() async throws {
        let harness = try await PaymentsHarness.make()
        let body = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
        try await harness.run { client in
            var stripe = Deliveries.stripeHeaders(body)
            stripe[.stripeSignature] = (stripe[.stripeSignature] ?? "") + ",v0=" + String(repeating: "a", count: 4096)
            let refused = try await client.stripe(body, headers: stripe, from: "198.51.100.1")
            #expect(refused.status == .badRequest && refused.errorCode == "invalid_signature")
            let padding: [(HTTPField.Name, String)] = [
                (.webhookID, String(repeating: "x", count: 4097)), (.webhookTimestamp, String(repeating: "0", count: 4097)),
                (.webhookSignature, " v2," + String(repeating: "A", count: 4096)),
            ]
            for (name, extra) in padding {
                var headers = Deliveries.standardHeaders(body)
                headers[name] = (headers[name] ?? "") + extra
                let answer = try await client.paymentEvent(body, headers: headers, from: "198.51.100.2")
                #expect(answer.status == .badRequest && answer.errorCode == "invalid_signature", "\(name)")
            }
            // Exactly 4 KiB is still read (and here verifies).
            var limit = Deliveries.stripeHeaders(body)
            let signature = limit[.stripeSignature] ?? ""
            limit[.stripeSignature] = signature + ",v0=" + String(repeating: "a", count: 4096 - signature.utf8.count - 4)
            #expect(try await client.stripe(body, headers: limit, from: "198.51.100.3").status == .ok)
        }
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events") == 1)
    }

    @Test("an oversized signature header gets its 400 before the body arrives; the body is then discarded and the connection kept")
    func oversizedHeaderBeforeBody() async throws {
        let harness = try await PaymentsHarness.make()
        let body = Self.paddedDelivery(size: 200_000)
        let header = StripeSignature.header(payload: body, secret: PaymentsHarness.stripeSecrets[0], timestamp: Deliveries.now)
        try await harness.run(testing: .live) { client in
            let connection = try RawTCPConnection(port: try #require(client.port))
            try await connection.send(
                "POST /v1/webhooks/stripe HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
                    + "Stripe-Signature: \(header),v0=\(String(repeating: "a", count: 4096))\r\n\r\n")
            try await connection.send(Array(body.prefix(1000)))
            // The rest of the body has not been sent: the answer must not wait for it.
            let refusal = try await connection.read(until: "invalid_signature", timeout: .seconds(5))
            #expect(refusal?.hasPrefix("HTTP/1.1 400") == true)
            try await connection.send(Array(body.dropFirst(1000)))
            try await connection.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let next = try await connection.read(until: "HTTP/1.1 200", timeout: .seconds(10))
            #expect(next != nil, "the connection serves the next request after the discarded body")
        }
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events") == 0)
    }

    @Test("concurrent forgeries from one source: no more of them are verified than its budget, the rest get 429")
    func concurrentForgeries() async throws {
        let harness = try await PaymentsHarness.make(settings: ["UNVERIFIED_BURST": "5", "UNVERIFIED_REFILL_PER_MINUTE": "1"])
        let body = Self.paddedDelivery(size: 100_000)
        let forged = StripeSignature.header(payload: body, secret: "whsec_forged", timestamp: Deliveries.now)
        try await harness.run(testing: .live) { client in
            // 40 connections send their heads and part of their bodies, so all 40 requests are admitted
            // before any of them can fail verification; then the rest of every body follows.
            let port = try #require(client.port)
            var connections: [RawTCPConnection] = []
            for _ in 0..<40 {
                let connection = try RawTCPConnection(port: port)
                try await connection.send(
                    "POST /v1/webhooks/stripe HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                        + "Content-Length: \(body.count)\r\nX-Forwarded-For: 192.0.2.77\r\nStripe-Signature: \(forged)\r\n\r\n")
                try await connection.send(Array(body.prefix(1000)))
                connections.append(connection)
            }
            try await Task.sleep(for: .milliseconds(300))
            var statuses: [String] = []
            for connection in connections { try await connection.send(Array(body.dropFirst(1000))) }
            for connection in connections {
                let answer = try await connection.read(until: "\r\n", timeout: .seconds(10)) ?? ""
                statuses.append(String(answer.prefix(12)))
            }
            #expect(statuses.filter { $0 == "HTTP/1.1 400" }.count <= 5)
            #expect(statuses.filter { $0 == "HTTP/1.1 429" }.count >= 35)
            #expect(statuses.count == 40)
            // The real sender elsewhere is untouched.
            #expect(try await client.stripe(body, from: "192.0.2.10").status == .ok)
        }
    }

    @Test("verified requests give their token back: a source with a budget of 1 is never limited by its own correct deliveries")
    func verifiedRequestsSpendNothing() async throws {
        let harness = try await PaymentsHarness.make(settings: ["UNVERIFIED_BURST": "1", "UNVERIFIED_REFILL_PER_MINUTE": "1"])
        try await harness.run { client in
            for _ in 0..<10 {
                let body = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
                #expect(try await client.stripe(body, from: "192.0.2.20").status == .ok)
                let event = Deliveries.json(["id": .string("pe_\(UUID())"), "type": "payment.created"])
                #expect(try await client.paymentEvent(event, from: "192.0.2.20").status == .ok)
            }
            let body = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
            let forged = try await client.stripe(body, headers: Deliveries.stripeHeaders(body, secret: "whsec_forged"), from: "192.0.2.20")
            #expect(forged.status == .badRequest)
            // Its one token is spent now: even a correct delivery waits for the refill.
            #expect(try await client.stripe(body, from: "192.0.2.20").status == .tooManyRequests)
        }
    }
}
