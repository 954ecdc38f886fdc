import Foundation
import HTTPTypes
import HummingbirdTesting
import Postgres
import ServiceKit
import SharedModel
import TestSupport
import Testing
import WebhookSignatures

@testable import PaymentsWebhook

@Suite("Payments webhooks: verified, stored once, mapped to domain events")
struct WebhookIngestTests {
    @Test("payment_intent.succeeded becomes payment.succeeded: amount_received, upper-case currency, booking id; stored with the raw body")
    func stripeSucceeded() async throws {
        let harness = try await PaymentsHarness.make()
        let postgres = harness.postgres
        let booking = UUID().uuidString.lowercased()
        let body = Deliveries.stripeEvent(
            id: "evt_succeeded_1", type: "payment_intent.succeeded",
            object: Deliveries.paymentIntent(id: "pi_1", amount: 5000, received: 4900, currency: "eur", bookingID: booking))
        try await harness.run { client in
            let answer = try await client.stripe(body)
            #expect(answer.status == .ok)
            #expect(answer["status"] == "accepted")
            #expect(answer["duplicate"] == false)
            let row = try #require(
                try await postgres.query(
                    "SELECT status, booking_id, provider_ref, amount, currency, raw_body, domain_event_type FROM payments.provider_events WHERE provider_event_id = 'evt_succeeded_1'"
                ).first)
            #expect(try row.decode(String.self, at: 0) == "accepted")
            #expect(try row.decode(UUID.self, at: 1).uuidString.lowercased() == booking)
            #expect(try row.decode(String.self, at: 2) == "pi_1")
            #expect(try row.decode(Int64.self, at: 3) == 4900)
            #expect(try row.decode(String.self, at: 4) == "EUR")
            #expect(Array(try row.decode(Data.self, at: 5)) == body)
            #expect(try row.decode(String.self, at: 6) == "payment.succeeded")
        }
        let events = try await harness.outbox(type: "payment.succeeded")
        #expect(events.count == 1)
        let event = try events[0].decode(PaymentSucceeded.self)
        #expect(event.amount == Money(amount: 4900, currency: .eur))
        #expect(event.bookingID?.description == booking)
        #expect(event.provider == "stripe" && event.providerRef == "pi_1" && event.paymentEventID.rawValue == "evt_succeeded_1")
        #expect(events[0].aggregateID == booking)
        #expect(events[0].producer == .paymentsWebhook)
    }

    @Test("payment_failed (not final), canceled (final), charge.refunded as this refund's amount, unknown types; a foreign booking_id flows on")
    func stripeMapping() async throws {
        let harness = try await PaymentsHarness.make()
        let refundID = UUID()
        let booking = UUID().uuidString.lowercased()
        try await harness.run { client in
            let failed = Deliveries.stripeEvent(
                type: "payment_intent.payment_failed",
                object: Deliveries.paymentIntent(id: "pi_f", amount: 700, received: 0, failure: "card_declined"))
            #expect(try await client.stripe(failed)["status"] == "accepted")
            let charge: JSONValue = [
                "id": "ch_1", "object": "charge", "amount": 5000, "amount_refunded": 5000, "currency": "usd", "payment_intent": "pi_r",
                "metadata": ["booking_id": .string(booking)], "refunded": true,
                "refunds": ["object": "list", "data": [["id": "re_1", "amount": 5000, "metadata": ["refund_id": .string(refundID.uuidString)]]]],
            ]
            #expect(try await client.stripe(Deliveries.stripeEvent(type: "charge.refunded", object: charge))["status"] == "accepted")
            // A second, partial refund of another charge: this refund's amount (newest first), not the cumulative total.
            let partial: JSONValue = [
                "id": "ch_2", "object": "charge", "amount": 5000, "amount_refunded": 3000, "currency": "usd", "payment_intent": "pi_p",
                "metadata": ["booking_id": .string(booking)], "refunded": false,
                "refunds": [
                    "object": "list",
                    "data": [["id": "re_3", "amount": 2000, "metadata": [:]], ["id": "re_2", "amount": 1000, "metadata": [:]]],
                ],
            ]
            #expect(try await client.stripe(Deliveries.stripeEvent(type: "charge.refunded", object: partial))["status"] == "accepted")
            // Without the refunds list (newer API versions): the growth over previous_attributes.
            var withoutList = Deliveries.stripeEvent(
                type: "charge.refunded",
                object: [
                    "id": "ch_3", "object": "charge", "amount": 5000, "amount_refunded": 4500, "currency": "usd", "payment_intent": "pi_q",
                    "metadata": ["booking_id": .string(booking)], "refunded": false,
                ])
            withoutList = try JSONSerialization.data(
                withJSONObject: {
                    var object = try JSONSerialization.jsonObject(with: Data(withoutList)) as? [String: Any] ?? [:]
                    var data = object["data"] as? [String: Any] ?? [:]
                    data["previous_attributes"] = ["amount_refunded": 4000]
                    object["data"] = data
                    return object
                }()
            ).map { $0 }
            #expect(try await client.stripe(withoutList)["status"] == "accepted")
            let canceled = Deliveries.stripeEvent(
                type: "payment_intent.canceled", object: Deliveries.paymentIntent(id: "pi_c", amount: 800, received: 0))
            #expect(try await client.stripe(canceled)["status"] == "accepted")
            let foreign = Deliveries.stripeEvent(
                type: "payment_intent.succeeded", object: Deliveries.paymentIntent(id: "pi_x", bookingID: "order-77"))
            #expect(try await client.stripe(foreign)["status"] == "accepted")
            let other = Deliveries.stripeEvent(type: "customer.created", object: ["id": "cus_1", "object": "customer"])
            let ignored = try await client.stripe(other)
            #expect(ignored.status == .ok && ignored["status"] == "ignored")
        }
        let failures = try await harness.outbox(type: "payment.failed").map { try $0.decode(PaymentFailed.self) }
        let failure = try #require(failures.first { $0.providerRef == "pi_f" })
        #expect(failure.reason == "card_declined" && failure.amount.amount == 700 && failure.bookingID != nil)
        #expect(!failure.isFinal, "the customer may retry a payment_failed intent")
        let cancellation = try #require(failures.first { $0.providerRef == "pi_c" })
        #expect(cancellation.isFinal && cancellation.amount.amount == 800)
        let refunds = try await harness.outbox(type: "refund.succeeded").map { try $0.decode(RefundSucceeded.self) }
        let refund = try #require(refunds.first { $0.providerRef == "pi_r" })
        #expect(refund.refundID == RefundID(refundID) && refund.amount == Money(amount: 5000, currency: .usd) && refund.providerRefundRef == "re_1")
        #expect(refund.bookingID?.description == booking)
        let second = try #require(refunds.first { $0.providerRef == "pi_p" })
        #expect(second.amount == Money(amount: 2000, currency: .usd) && second.providerRefundRef == "re_3" && second.refundID == nil)
        let unlisted = try #require(refunds.first { $0.providerRef == "pi_q" })
        #expect(unlisted.amount == Money(amount: 500, currency: .usd) && unlisted.providerRefundRef == nil)
        let unmatched = try await harness.outbox(type: "payment.succeeded")
        #expect(unmatched.count == 1)
        #expect(try unmatched[0].decode(PaymentSucceeded.self).bookingID == nil)
        #expect(unmatched[0].aggregateID == "pi_x")
        #expect(try await harness.count("SELECT count(*) FROM messaging.outbox") == 6)
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events WHERE status = 'ignored' AND domain_event_id IS NULL") == 1)
    }

    @Test(
        "disputes: created and funds_withdrawn become payment.disputed, closed becomes payment.dispute_closed (won, warning_closed, lost), the booking looked up by the payment; bad closings and amounts are malformed; funds_reinstated is ignored"
    )
    func stripeDisputes() async throws {
        let harness = try await PaymentsHarness.make()
        let (intentBooking, paidBooking) = (UUID(), UUID())
        try await harness.postgres.query(
            """
            INSERT INTO payments.payment_intents (booking_id, provider, provider_ref, amount, currency, idempotency_key, created_at)
            VALUES (\(intentBooking), 'stripe', 'pi_known', 5000, 'EUR', 'booking-known-payment', now())
            """)
        @Sendable func dispute(_ id: String, payment: String, amount: JSONValue = 5000, status: String = "needs_response") -> JSONValue {
            [
                "id": .string(id), "object": "dispute", "amount": amount, "currency": "eur", "charge": .string("ch_\(payment)"),
                "payment_intent": .string(payment), "reason": "fraudulent", "status": .string(status), "metadata": [:],
            ]
        }
        try await harness.run { client in
            // A payment the platform knows only from its payment_intent.succeeded (no intent row).
            let paid = Deliveries.stripeEvent(
                type: "payment_intent.succeeded", object: Deliveries.paymentIntent(id: "pi_paid", bookingID: paidBooking.uuidString))
            #expect(try await client.stripe(paid)["status"] == "accepted")
            for (type, object) in [
                ("charge.dispute.created", dispute("dp_1", payment: "pi_known")),
                ("charge.dispute.funds_withdrawn", dispute("dp_1", payment: "pi_known")),
                ("charge.dispute.closed", dispute("dp_1", payment: "pi_known", status: "lost")),
                ("charge.dispute.created", dispute("dp_2", payment: "pi_paid", amount: 1200)),
                ("charge.dispute.closed", dispute("dp_2", payment: "pi_paid", amount: 1200, status: "warning_closed")),
                ("charge.dispute.created", dispute("dp_3", payment: "pi_nobody")),
            ] {
                let answer = try await client.stripe(Deliveries.stripeEvent(type: type, object: object))
                #expect(answer.status == .ok && answer["status"] == "accepted", "\(type): \(String(describing: answer.json))")
            }
            for (object, reason) in [
                (dispute("dp_4", payment: "pi_known", status: "needs_response"), "won, warning_closed or lost"),
                (dispute("dp_4", payment: "pi_known", amount: 0, status: "lost"), "positive"),
                (dispute("dp_4", payment: "pi_known", amount: "5000", status: "lost"), "integer"),
            ] {
                let answer = try await client.stripe(Deliveries.stripeEvent(type: "charge.dispute.closed", object: object))
                #expect(answer.status == .badRequest && answer.errorCode == "malformed_payload")
                let message = answer.json?["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains(reason), "\(message)")
            }
            let reinstated = try await client.stripe(
                Deliveries.stripeEvent(type: "charge.dispute.funds_reinstated", object: dispute("dp_2", payment: "pi_paid", status: "won")))
            #expect(reinstated["status"] == "ignored")
        }
        let opened = try await harness.outbox(type: "payment.disputed").map { try $0.decode(PaymentDisputed.self).dispute }
        #expect(opened.count == 4)
        #expect(opened.filter { $0.disputeRef == "dp_1" }.allSatisfy { $0.bookingID == BookingID(intentBooking) && $0.providerRef == "pi_known" })
        #expect(opened.first { $0.disputeRef == "dp_2" }?.bookingID == BookingID(paidBooking))
        #expect(opened.first { $0.disputeRef == "dp_2" }?.amount == Money(amount: 1200, currency: .eur))
        #expect(opened.first { $0.disputeRef == "dp_3" }.map { $0.bookingID == nil && $0.reason == "fraudulent" } == true)
        let closed = try await harness.outbox(type: "payment.dispute_closed").map { try $0.decode(PaymentDisputeClosed.self) }
        #expect(closed.count == 2)
        #expect(closed.first { $0.dispute.disputeRef == "dp_1" }.map { $0.outcome == .lost && $0.dispute.status == "lost" } == true)
        #expect(closed.first { $0.dispute.disputeRef == "dp_2" }?.outcome == .won)
        #expect(
            try await harness.count(
                "SELECT count(*) FROM payments.provider_events WHERE event_type LIKE 'charge.dispute.%' AND booking_id IS NOT NULL AND status = 'accepted'"
            )
                == 5)
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events WHERE status = 'malformed'") == 3)
    }

    @Test("refused with 400 and nothing stored: tampered byte, stale or future timestamp, rotated-out secret, only v0, no header")
    func stripeRefusals() async throws {
        let harness = try await PaymentsHarness.make()
        let body = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
        var tampered = body
        tampered[tampered.count / 2] ^= 0x01
        let now = Deliveries.now
        let valid = StripeSignature.signature(payload: body, secret: PaymentsHarness.stripeSecrets[0], timestamp: now)
        let cases: [(String, [UInt8], HTTPFields)] = [
            ("one byte changed", tampered, Deliveries.stripeHeaders(body)),
            ("timestamp 10 minutes old", body, Deliveries.stripeHeaders(body, timestamp: now - 600)),
            ("timestamp 10 minutes ahead", body, Deliveries.stripeHeaders(body, timestamp: now + 600)),
            ("rotated-out secret", body, Deliveries.stripeHeaders(body, secret: "whsec_retired_secret")),
            ("only v0", body, [.stripeSignature: "t=\(now),v0=\(valid)"]),
            ("no header", body, [:]),
            ("garbage header", body, [.stripeSignature: "not a signature"]),
        ]
        try await harness.run { client in
            for (name, payload, headers) in cases {
                let answer = try await client.stripe(payload, headers: headers, from: "198.51.100.\(name.count)")
                #expect(answer.status == .badRequest, "\(name)")
                #expect(answer.errorCode == "invalid_signature", "\(name)")
            }
            // Either configured secret verifies, and a valid v1 among several is enough.
            let second = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
            #expect(
                try await client.stripe(second, headers: Deliveries.stripeHeaders(second, secret: PaymentsHarness.stripeSecrets[1])).status == .ok)
            let third = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
            let good = StripeSignature.signature(payload: third, secret: PaymentsHarness.stripeSecrets[0], timestamp: now)
            let several: HTTPFields = [.stripeSignature: "t=\(now),v1=\(String(repeating: "0", count: 64)),v1=\(good)"]
            #expect(try await client.stripe(third, headers: several).status == .ok)
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(metrics.contains(#"outcome="bad_signature""#))
        }
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events") == 2)
        #expect(try await harness.count("SELECT count(*) FROM messaging.outbox") == 2)
    }

    @Test("the same event delivered 50 times at once: one row, one outbox event, 50 answers of 200")
    func concurrentDuplicates() async throws {
        let harness = try await PaymentsHarness.make()
        let body = Deliveries.stripeEvent(id: "evt_dup", type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
        try await harness.run { client in
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for _ in 0..<50 { group.addTask { try await client.stripe(body) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.count == 50)
            #expect(answers.allSatisfy { $0.status == .ok })
            #expect(answers.filter { $0["duplicate"] == false }.count == 1)
            #expect(Set(answers.compactMap { $0["id"]?.stringValue }).count == 1)
        }
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events WHERE provider_event_id = 'evt_dup'") == 1)
        #expect(try await harness.count("SELECT count(*) FROM messaging.outbox") == 1)
    }

    @Test("300 distinct webhooks at once share transactions (group commit): each stored once with its event, in far fewer transactions")
    func groupCommit() async throws {
        let harness = try await PaymentsHarness.make()
        let bodies = (0..<300).map { index in
            Deliveries.stripeEvent(
                id: "evt_group_\(index)", type: "payment_intent.succeeded", object: Deliveries.paymentIntent(id: "pi_group_\(index)"))
        }
        try await harness.run { client in
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for body in bodies { group.addTask { try await client.stripe(body) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.count == 300 && answers.allSatisfy { $0.status == .ok && $0["status"] == "accepted" && $0["duplicate"] == false })
            #expect(Set(answers.compactMap { $0["id"]?.stringValue }).count == 300)
        }
        // Rows inserted by one transaction share its id (`xmin`; provider events are never updated), so
        // the distinct ids count the transactions that stored these 300 webhooks, and only those: the
        // growth of `txid_current()` also counted other tests' and the relay's transactions on the same
        // server (a loaded CI machine once saw 227). One transaction per store would be 300.
        let transactions = try await harness.count(
            "SELECT count(DISTINCT xmin::text) FROM payments.provider_events WHERE provider_event_id LIKE 'evt_group_%'")
        #expect(transactions < 200, "\(transactions) transactions for 300 webhooks")
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events WHERE provider_event_id LIKE 'evt_group_%'") == 300)
        #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'payment.succeeded'") == 300)
        #expect(try await harness.count("SELECT count(DISTINCT (envelope ->> 'aggregate_id')) FROM messaging.outbox") == 300)
    }

    @Test("malformed JSON after a valid signature: 400, kept once for inspection, no domain event; 413 over 256 KiB")
    func malformedAndTooLarge() async throws {
        let harness = try await PaymentsHarness.make()
        try await harness.run { client in
            let broken = Array(#"{"id": "evt_broken", "type": "payment_intent.succeeded", "data": "#.utf8)
            let first = try await client.stripe(broken)
            #expect(first.status == .badRequest && first.errorCode == "malformed_payload")
            let storedID = try #require(first.json?["error"]?["details"]?["stored_id"]?.stringValue)
            let again = try await client.stripe(broken)
            #expect(again.status == .badRequest)
            #expect(again.json?["error"]?["details"]?["stored_id"]?.stringValue == storedID)
            // A mapped type missing its amount is malformed too; so is an internal event with a non-UUID booking id.
            let noAmount = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: ["id": "pi_1", "currency": "usd"])
            #expect(try await client.stripe(noAmount).errorCode == "malformed_payload")
            let internalBody = Deliveries.json([
                "id": "pe_1", "type": "payment.succeeded", "booking_id": "not-a-uuid", "amount": 100, "currency": "EUR", "provider_ref": "pi_9",
                "occurred_at": "2026-11-21T10:00:00Z",
            ])
            #expect(try await client.paymentEvent(internalBody).errorCode == "malformed_payload")
            // Text Postgres cannot hold, or cannot index, is malformed too (found by the fuzzer as 500s).
            let nulType = Array(#"{"created": 0, "id": "0", "type": "\u0000x"}"#.utf8)
            #expect(try await client.stripe(nulType).errorCode == "malformed_payload")
            let longReference = Deliveries.stripeEvent(
                type: "payment_intent.succeeded", object: Deliveries.paymentIntent(id: "pi_" + String(repeating: "x", count: 3000)))
            #expect(try await client.stripe(longReference).errorCode == "malformed_payload")
            for (field, value) in [("reason", JSONValue.string("card\u{0}declined")), ("currency", "eur"), ("provider_ref", "a\u{0}b")] {
                var event: [String: JSONValue] = [
                    "id": "pe_nul", "type": "payment.failed", "booking_id": .null, "amount": 5, "currency": "EUR", "provider_ref": "pi_1",
                    "occurred_at": "2026-01-01T00:00:00Z",
                ]
                event[field] = value
                #expect(try await client.paymentEvent(Deliveries.json(.object(event))).errorCode == "malformed_payload", "\(field)")
            }
            let stored = try await client.admin("/v1/admin/payment-events/\(storedID)")
            #expect(stored.status == .ok)
            #expect(stored["status"] == "malformed")
            #expect(stored["raw_body"]?.stringValue == String(decoding: broken, as: UTF8.self))

            let huge = Array(repeating: UInt8(ascii: "a"), count: 256 * 1024 + 1)
            let tooLarge = try await client.stripe(huge)
            #expect(tooLarge.status == .contentTooLarge)
        }
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events WHERE status = 'malformed'") == 8)
        #expect(try await harness.count("SELECT count(*) FROM messaging.outbox") == 0)
    }

    @Test("a flood of bad signatures from one source is cut off with 429; a real sender elsewhere is still accepted")
    func unverifiedRateLimit() async throws {
        let harness = try await PaymentsHarness.make(settings: ["UNVERIFIED_BURST": "10", "UNVERIFIED_REFILL_PER_MINUTE": "1"])
        try await harness.run { client in
            let body = Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<30 {
                statuses.append(
                    try await client.stripe(body, headers: Deliveries.stripeHeaders(body, secret: "whsec_forged"), from: "192.0.2.66").status)
            }
            #expect(statuses.prefix(10).allSatisfy { $0 == .badRequest })
            #expect(statuses.suffix(19).allSatisfy { $0 == .tooManyRequests })
            let limited = try await client.stripe(body, from: "192.0.2.66")
            #expect(limited.status == .tooManyRequests && limited.headers[.retryAfter] != nil && limited.errorCode == "rate_limited")
            let real = try await client.stripe(body, from: "192.0.2.10")
            #expect(real.status == .ok)
        }
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events") == 1)
    }

    @Test("internal payment events: the four types under Standard Webhooks, forged ones refused, unknown types kept")
    func standardWebhooks() async throws {
        let harness = try await PaymentsHarness.make()
        let booking = UUID().uuidString.lowercased()
        let refund = UUID().uuidString.lowercased()
        try await harness.run { client in
            for (index, type) in ["payment.succeeded", "payment.failed", "refund.succeeded", "refund.failed"].enumerated() {
                let body = Deliveries.json([
                    "id": .string("pe_\(index)"), "type": .string(type), "booking_id": .string(booking), "amount": 1500, "currency": "JPY",
                    "provider_ref": "gift_1", "occurred_at": "2026-11-21T10:00:00+01:00", "refund_id": .string(refund),
                    "reason": "insufficient_funds",
                    "error": "account closed",
                ])
                let answer = try await client.paymentEvent(body)
                #expect(answer.status == .ok && answer["status"] == "accepted", "\(type): \(String(describing: answer.json))")
            }
            let body = Deliveries.json(["id": "pe_x", "type": "payment.created", "amount": 1])
            #expect(try await client.paymentEvent(body)["status"] == "ignored")
            let forgedSecret = try #require(StandardWebhookSecret("whsec_" + Data("someone else".utf8).base64EncodedString()))
            let forged = try await client.paymentEvent(body, headers: Deliveries.standardHeaders(body, secret: forgedSecret))
            #expect(forged.status == .badRequest && forged.errorCode == "invalid_signature")
            let stale = try await client.paymentEvent(body, headers: Deliveries.standardHeaders(body, timestamp: Deliveries.now - 900))
            #expect(stale.status == .badRequest)
            var missing = Deliveries.standardHeaders(body)
            missing[.webhookID] = nil
            #expect(try await client.paymentEvent(body, headers: missing).status == .badRequest)
        }
        let succeeded = try #require(try await harness.outbox(type: "payment.succeeded").first).decode(PaymentSucceeded.self)
        #expect(succeeded.amount == Money(amount: 1500, currency: .jpy) && succeeded.provider == "internal")
        #expect(succeeded.providerCreatedAt == (try RFC3339.date(from: "2026-11-21T09:00:00Z")))
        let failed = try #require(try await harness.outbox(type: "payment.failed").first).decode(PaymentFailed.self)
        #expect(failed.reason == "insufficient_funds")
        let refunded = try #require(try await harness.outbox(type: "refund.succeeded").first).decode(RefundSucceeded.self)
        #expect(refunded.refundID?.description == refund)
        let refused = try #require(try await harness.outbox(type: "refund.failed").first).decode(RefundFailed.self)
        #expect(refused.error == "account closed")
        #expect(
            try await harness.count("SELECT count(*) FROM payments.provider_events WHERE provider = 'internal' AND delivery_id LIKE 'msg_%'") == 5)
    }

    @Test("admin lookups by id, booking and time range; admin token required")
    func adminLookups() async throws {
        let harness = try await PaymentsHarness.make()
        let booking = UUID().uuidString.lowercased()
        try await harness.run { client in
            var ids: [String] = []
            for index in 0..<3 {
                let body = Deliveries.stripeEvent(
                    type: "payment_intent.succeeded", object: Deliveries.paymentIntent(id: "pi_a\(index)", bookingID: index < 2 ? booking : nil))
                ids.append(try #require(try await client.stripe(body)["id"]?.stringValue))
            }
            let one = try await client.admin("/v1/admin/payment-events/\(ids[0])")
            #expect(one.status == .ok && one["provider_ref"] == "pi_a0" && one["raw_body_encoding"] == "utf-8")
            #expect(try await client.admin("/v1/admin/payment-events/\(UUID())").status == .notFound)
            #expect(try await client.admin("/v1/admin/payment-events/nope").status == .notFound)
            let byBooking = try await client.admin("/v1/admin/payment-events?booking_id=\(booking)")
            #expect(byBooking["events"]?.arrayValue?.count == 2)
            let page = try await client.admin("/v1/admin/payment-events?limit=2")
            #expect(page["events"]?.arrayValue?.count == 2)
            let cursor = try #require(page["next_cursor"]?.stringValue)
            let rest = try await client.admin("/v1/admin/payment-events?limit=2&cursor=\(cursor)")
            #expect(rest["events"]?.arrayValue?.count == 1 && rest["next_cursor"] == .null)
            let future = RFC3339.string(from: Date().addingTimeInterval(3600)).replacingOccurrences(of: "+", with: "%2B")
            #expect(try await client.admin("/v1/admin/payment-events?from=\(future)")["events"]?.arrayValue?.count == 0)
            #expect(try await client.admin("/v1/admin/payment-events?booking_id=x").status == .badRequest)
            #expect(try await client.admin("/v1/admin/payment-events?status=lost").status == .badRequest)
            #expect(try await client.admin("/v1/admin/payment-events?cursor=zz").status == .badRequest)
            for crafted in CraftedCursors.all {
                let escaped = crafted.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? crafted
                let answer = try await client.admin("/v1/admin/payment-events?cursor=\(escaped)")
                #expect(answer.status == .badRequest && answer["error"]?["code"]?.stringValue == "invalid_cursor", "\(crafted)")
            }
            #expect(try await client.admin("/v1/admin/payment-events", token: nil).status == .unauthorized)
            #expect(try await client.admin("/v1/admin/payment-events", token: "wrong").status == .unauthorized)
        }
    }

    @Test("a missing or invalid secret stops the configuration naming it")
    func requiredSecrets() throws {
        let complete = [
            "DATABASE_URL": "postgres://127.0.0.1/db", "REDIS_URL": "redis://127.0.0.1:6379", "ADMIN_TOKEN": "a", "STRIPE_WEBHOOK_SECRETS": "whsec_x",
            "PAYMENT_EVENTS_SECRETS": PaymentsHarness.eventsSecretText,
            "PROVIDER_API_KEY": "sk_test",
        ]
        #expect(throws: Never.self) { try PaymentsConfiguration(reader: ConfigurationReader(environment: complete)) }
        for name in ["STRIPE_WEBHOOK_SECRETS", "PAYMENT_EVENTS_SECRETS", "PROVIDER_API_KEY"] {
            var environment = complete
            environment[name] = nil
            #expect(throws: ConfigurationError.self, "\(name)") { try PaymentsConfiguration(reader: ConfigurationReader(environment: environment)) }
            environment[name] = " "
            #expect(throws: ConfigurationError.self, "\(name) blank") {
                try PaymentsConfiguration(reader: ConfigurationReader(environment: environment))
            }
        }
        var broken = complete
        broken["PAYMENT_EVENTS_SECRETS"] = "whsec_###"
        #expect(throws: ConfigurationError.self) { try PaymentsConfiguration(reader: ConfigurationReader(environment: broken)) }
        broken = complete
        broken["PROVIDER_BASE_URL"] = "ftp://example.com"
        #expect(throws: ConfigurationError.self) { try PaymentsConfiguration(reader: ConfigurationReader(environment: broken)) }
    }
}
