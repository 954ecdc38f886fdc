import Foundation
import Testing
import WebhookSignatures

@Suite("Webhook signatures: Stripe and Standard Webhooks")
struct WebhookSignatureTests {
    let payload = Array(#"{"id":"evt_1","type":"payment_intent.succeeded"}"#.utf8)
    let secret = "whsec_test_secret"
    let signedAt: Int64 = 1_700_000_000
    var now: Date { Date(timeIntervalSince1970: TimeInterval(signedAt)) }
    /// Computed independently (Python's hmac) for `payload`, `secret` and `signedAt`.
    let expected = "22d8dc182f5c588077683bd378368e29765bfe5df2560112b4f28fef120f0e31"

    @Test("A Stripe signature over the raw bytes verifies, with any configured secret and any v1")
    func stripeAccepts() throws {
        #expect(StripeSignature.signature(payload: payload, secret: secret, timestamp: signedAt) == expected)
        let header = "t=\(signedAt),v1=\(expected)"
        #expect(try StripeSignature.verify(payload: payload, header: header, secrets: [secret], now: now) == now)
        // Rotation: the right secret among several, the right v1 among several, v0 ignored.
        try StripeSignature.verify(payload: payload, header: header, secrets: ["whsec_old", secret], now: now)
        try StripeSignature.verify(
            payload: payload, header: "t=\(signedAt),v0=abc,v1=\(String(repeating: "0", count: 64)),v1=\(expected)", secrets: [secret], now: now)
        // Tolerance in both directions.
        try StripeSignature.verify(payload: payload, header: header, secrets: [secret], now: now.addingTimeInterval(300))
        try StripeSignature.verify(payload: payload, header: header, secrets: [secret], now: now.addingTimeInterval(-300))
    }

    @Test("Stripe: one changed byte, stale or future timestamps, rotated-out secrets, v0 only and malformed headers are refused")
    func stripeRefuses() {
        let header = "t=\(signedAt),v1=\(expected)"
        var tampered = payload
        tampered[5] ^= 0x01
        let cases: [([UInt8], String?, [String], Date, StripeSignature.Failure)] = [
            (tampered, header, [secret], now, .noMatch),
            (payload, header, [secret], now.addingTimeInterval(301), .timestampOutOfTolerance),
            (payload, header, [secret], now.addingTimeInterval(-301), .timestampOutOfTolerance),
            (payload, header, ["whsec_rotated_in"], now, .noMatch),
            (payload, "t=\(signedAt),v0=\(expected)", [secret], now, .noV1Signature),
            (payload, nil, [secret], now, .missingHeader),
            (payload, "", [secret], now, .missingHeader),
            (payload, "v1=\(expected)", [secret], now, .malformedHeader),
            (payload, "t=abc,v1=\(expected)", [secret], now, .malformedHeader),
            (payload, "t=\(signedAt),t=\(signedAt),v1=\(expected)", [secret], now, .malformedHeader),
            (payload, "garbage", [secret], now, .malformedHeader),
            (payload, header, [], now, .noSecretConfigured),
            (payload, header, [""], now, .noSecretConfigured),
        ]
        for (body, header, secrets, at, failure) in cases {
            #expect(throws: failure, "\(header ?? "nil")") {
                try StripeSignature.verify(payload: body, header: header, secrets: secrets, now: at)
            }
        }
    }

    @Test("Stripe: at most 8 signatures per header; a 9th makes the header malformed even when one of them matches")
    func stripeSignatureCount() throws {
        let wrong = String(repeating: "0", count: 64)
        let eight = "t=\(signedAt)" + String(repeating: ",v1=\(wrong)", count: 7) + ",v1=\(expected)"
        try StripeSignature.verify(payload: payload, header: eight, secrets: [secret, "whsec_other"], now: now)
        #expect(throws: StripeSignature.Failure.malformedHeader) {
            try StripeSignature.verify(payload: payload, header: eight + ",v0=\(wrong)", secrets: [secret], now: now)
        }
        #expect(throws: StripeSignature.Failure.malformedHeader) {
            try StripeSignature.verify(
                payload: payload, header: "t=\(signedAt),v1=\(expected)" + String(repeating: ",v1=x", count: 8), secrets: [secret], now: now)
        }
    }

    @Test("Standard Webhooks: the specification's test vector verifies; forgeries are refused")
    func standardWebhooks() throws {
        // https://github.com/standard-webhooks/standard-webhooks (reference libraries' test vector).
        let secret = try #require(StandardWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let body = Array(#"{"test": 2432232314}"#.utf8)
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp = "1614265330"
        let at = Date(timeIntervalSince1970: 1_614_265_330)
        let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        #expect(StandardWebhooks.signature(payload: body, id: id, timestamp: 1_614_265_330, secret: secret) == signature)
        try StandardWebhooks.verify(payload: body, id: id, timestamp: timestamp, signatures: signature, secrets: [secret], now: at)
        try StandardWebhooks.verify(
            payload: body, id: id, timestamp: timestamp, signatures: "v2,abc v1,AAAA \(signature)", secrets: [secret], now: at)
        let other = try #require(StandardWebhookSecret("whsec_" + Data("another key".utf8).base64EncodedString()))
        try StandardWebhooks.verify(payload: body, id: id, timestamp: timestamp, signatures: signature, secrets: [other, secret], now: at)

        #expect(throws: StandardWebhooks.Failure.noMatch) {
            try StandardWebhooks.verify(payload: body + [0x20], id: id, timestamp: timestamp, signatures: signature, secrets: [secret], now: at)
        }
        #expect(throws: StandardWebhooks.Failure.noMatch) {
            try StandardWebhooks.verify(payload: body, id: "msg_other", timestamp: timestamp, signatures: signature, secrets: [secret], now: at)
        }
        #expect(throws: StandardWebhooks.Failure.noMatch) {
            try StandardWebhooks.verify(payload: body, id: id, timestamp: timestamp, signatures: signature, secrets: [other], now: at)
        }
        #expect(throws: StandardWebhooks.Failure.timestampOutOfTolerance) {
            try StandardWebhooks.verify(payload: body, id: id, timestamp: timestamp, signatures: signature, secrets: [secret], now: at + 301)
        }
        #expect(throws: StandardWebhooks.Failure.missingHeader("webhook-signature")) {
            try StandardWebhooks.verify(payload: body, id: id, timestamp: timestamp, signatures: nil, secrets: [secret], now: at)
        }
        #expect(throws: StandardWebhooks.Failure.malformedHeader("webhook-timestamp")) {
            try StandardWebhooks.verify(payload: body, id: id, timestamp: "soon", signatures: signature, secrets: [secret], now: at)
        }
        // At most 8 signatures per header, whatever their version.
        let eight = Array(repeating: "v1,AAAA", count: 7).joined(separator: " ") + " " + signature
        try StandardWebhooks.verify(payload: body, id: id, timestamp: timestamp, signatures: eight, secrets: [other, secret], now: at)
        #expect(throws: StandardWebhooks.Failure.malformedHeader("webhook-signature")) {
            try StandardWebhooks.verify(payload: body, id: id, timestamp: timestamp, signatures: "v2,abc " + eight, secrets: [secret], now: at)
        }
        #expect(StandardWebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == nil)
        #expect(StandardWebhookSecret("whsec_") == nil)
        #expect(StandardWebhookSecret("whsec_not base64!") == nil)
    }
}
