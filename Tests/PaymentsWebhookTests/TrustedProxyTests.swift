import Foundation
import HTTPTypes
import HummingbirdTesting
import ServiceKit
import SharedModel
import TestSupport
import Testing
import WebhookSignatures

@testable import PaymentsWebhook

@Suite("Unverified-request budget behind trusted proxies")
struct TrustedProxyTests {
    @Test("behind a trusted proxy, a forger spending its budget leaves the real provider, another X-Forwarded-For client, unlimited")
    func forgerBehindProxy() async throws {
        // The test client connects from the loopback address: it plays the proxy (and 10.0.0.0/8 a second, inner one).
        let harness = try await PaymentsHarness.make(settings: [
            "TRUSTED_PROXIES": "127.0.0.1/32, ::1/128, 10.0.0.0/8", "TRUST_FORWARDED_FOR": "", "UNVERIFIED_BURST": "3",
            "UNVERIFIED_REFILL_PER_MINUTE": "1",
        ])
        try await harness.run(testing: .live) { client in
            let body = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
            let forged = Deliveries.stripeHeaders(body, secret: "whsec_forged")
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<6 { statuses.append(try await client.stripe(body, headers: forged, from: "198.51.100.66").status) }
            #expect(statuses == [.badRequest, .badRequest, .badRequest, .tooManyRequests, .tooManyRequests, .tooManyRequests])
            // What the forger writes into the header itself is left of the proxy's entry and never read.
            #expect(try await client.stripe(body, headers: forged, from: "192.0.2.10, 198.51.100.66").status == .tooManyRequests)
            #expect(try await client.stripe(body, headers: forged, from: "198.51.100.66, 10.9.8.7").status == .tooManyRequests)
            // Rotating through its IPv6 /64 does not give it a fresh budget.
            var rotating: [HTTPResponse.Status] = []
            for host in 1...5 { rotating.append(try await client.stripe(body, headers: forged, from: "2001:db8:7:7::\(host)").status) }
            #expect(rotating == [.badRequest, .badRequest, .badRequest, .tooManyRequests, .tooManyRequests])

            // The real provider, directly behind the proxy or behind both proxies, is accepted.
            #expect(try await client.stripe(body, from: "192.0.2.10").status == .ok)
            let second = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
            #expect(try await client.stripe(second, from: "192.0.2.10, 10.1.2.3").status == .ok)
        }
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events") == 2)
    }

    @Test("without TRUSTED_PROXIES, X-Forwarded-For is ignored: every request counts against the peer")
    func headerIgnoredWithoutTrustedProxies() async throws {
        let harness = try await PaymentsHarness.make(settings: [
            "TRUST_FORWARDED_FOR": "", "UNVERIFIED_BURST": "2", "UNVERIFIED_REFILL_PER_MINUTE": "1",
        ])
        try await harness.run(testing: .live) { client in
            let body = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
            let forged = Deliveries.stripeHeaders(body, secret: "whsec_forged")
            var statuses: [HTTPResponse.Status] = []
            for source in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
                statuses.append(try await client.stripe(body, headers: forged, from: source).status)
            }
            #expect(statuses == [.badRequest, .badRequest, .tooManyRequests])
        }
    }
}
