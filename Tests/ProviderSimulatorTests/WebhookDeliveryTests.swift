import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import WebhookSignatures

@testable import ProviderSimulator

@Suite("Webhook delivery to a real endpoint")
struct WebhookDeliveryTests {
    /// Checks the Stripe headers and signature of one received webhook and returns its parsed body.
    private func verified(_ received: WebhookReceiver.Received) throws -> JSONObject {
        #expect(received.headers[.contentType] == "application/json; charset=utf-8")
        #expect(received.headers[.userAgent] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        let signature = try #require(received.headers[HTTPField.Name("Stripe-Signature")!])
        try StripeSignature.verify(payload: received.body, header: signature, secrets: [testWebhookSecret], now: Date())
        #expect(throws: StripeSignature.Failure.noMatch) {
            try StripeSignature.verify(payload: received.body, header: signature, secrets: ["whsec_other"], now: Date())
        }
        return JSONObject(bytes: received.body)
    }

    @Test("payment_intent.succeeded arrives signed over the exact bytes, with metadata and overrides")
    func succeeded() async throws {
        try await withWebhookReceiver { url, receiver in
            try await withSimulator(webhookURL: url) { client in
                let id = try await createIntent(client, amount: 2500, bookingID: "bk_42")
                let answer = try await control(
                    client, .post, "/simulator/payment_intents/\(id)/succeed",
                    json: #"{"amount_received": 2400, "currency": "EUR", "created": 1700000000}"#)
                #expect(answer.status == .ok)
                let result = JSONObject(answer.body)
                #expect(result["type"] as? String == "payment_intent.succeeded")
                #expect(summary(result.object("delivery")) == "200/1/true")

                let received = try await receiver.waitFor(1)
                #expect(received.count == 1)
                let event = try verified(try #require(received.first))
                #expect(event["id"] as? String == result["event_id"] as? String)
                #expect(event["object"] as? String == "event")
                #expect(event["type"] as? String == "payment_intent.succeeded")
                #expect(event["api_version"] as? String == "2024-06-20")
                #expect(event["created"] as? Int == 1_700_000_000)
                #expect(event["livemode"] as? Bool == false)
                let intent = event.object("data").object("object")
                #expect(intent["id"] as? String == id)
                #expect(intent["status"] as? String == "succeeded")
                #expect(intent["amount"] as? Int == 2500)
                #expect(intent["amount_received"] as? Int == 2400)
                #expect(intent["currency"] as? String == "eur")
                #expect(intent.object("metadata")["booking_id"] as? String == "bk_42")

                let fetched = JSONObject(try await get(client, "/v1/payment_intents/\(id)").body)
                #expect(fetched["status"] as? String == "succeeded")
                let events = jsonArray(try await control(client, .get, "/simulator/events").body)
                #expect(events.map { $0["type"] as? String } == ["payment_intent.succeeded"])
                #expect(events.first?.object("delivery")["delivered"] as? Bool == true)
            }
        }
    }

    @Test("a refund sends charge.refunded after its answer, with the cumulative amount_refunded")
    func refunded() async throws {
        try await withWebhookReceiver { url, receiver in
            try await withSimulator(webhookURL: url) { client in
                let id = try await createSucceededIntent(client, amount: 3000, bookingID: "bk_7")
                let first = try await post(client, "/v1/refunds", form: "payment_intent=\(id)&amount=1000")
                #expect(first.status == .ok)
                let firstEvent = try verified(try #require(try await receiver.waitFor(2).last))
                #expect(firstEvent["type"] as? String == "charge.refunded")
                let firstCharge = firstEvent.object("data").object("object")
                #expect(firstCharge["object"] as? String == "charge")
                #expect(firstCharge["amount_refunded"] as? Int == 1000)
                #expect(firstCharge["refunded"] as? Bool == false)

                let second = JSONObject(try await post(client, "/v1/refunds", form: "payment_intent=\(id)").body)
                let received = try await receiver.waitFor(3)
                #expect(received.count == 3)
                let event = try verified(received[2])
                #expect(event["type"] as? String == "charge.refunded")
                let charge = event.object("data").object("object")
                #expect(charge["id"] as? String == second["charge"] as? String)
                #expect(charge["amount"] as? Int == 3000)
                #expect(charge["amount_refunded"] as? Int == 3000)
                #expect(charge["currency"] as? String == "usd")
                #expect(charge["payment_intent"] as? String == id)
                #expect(charge["refunded"] as? Bool == true)
                #expect(charge.object("metadata")["booking_id"] as? String == "bk_7")
                let refunds = charge.object("refunds")
                #expect(refunds["object"] as? String == "list")
                #expect(refunds.objects("data").map { $0["id"] as? String } == [second["id"] as? String, JSONObject(first.body)["id"] as? String])

                let delivered = try await eventually {
                    let events = jsonArray(try await control(client, .get, "/simulator/events").body)
                    return events.count == 3 && events.allSatisfy { $0.object("delivery")["delivered"] as? Bool == true }
                }
                #expect(delivered, "the asynchronous deliveries are recorded once known")
            }
        }
    }

    @Test("a receiver answering 500 twice then 200 gets three attempts")
    func retries() async throws {
        try await withWebhookReceiver(statuses: [500, 500]) { url, receiver in
            try await withSimulator(webhookURL: url, attempts: 5) { client in
                let id = try await createIntent(client)
                let answer = JSONObject(try await control(client, .post, "/simulator/payment_intents/\(id)/succeed").body)
                #expect(summary(answer.object("delivery")) == "200/3/true")
                let received = await receiver.received
                #expect(received.count == 3)
                #expect(Set(received.map(\.body)).count == 1, "every attempt sends the same event bytes")
                for attempt in received { _ = try verified(attempt) }
            }
        }
    }

    @Test("delivery gives up after the configured attempts and reports the last status")
    func givesUp() async throws {
        try await withWebhookReceiver(statuses: [503, 503, 503]) { url, receiver in
            try await withSimulator(webhookURL: url, attempts: 3) { client in
                let id = try await createIntent(client)
                let answer = JSONObject(try await control(client, .post, "/simulator/payment_intents/\(id)/fail").body)
                #expect(answer["type"] as? String == "payment_intent.payment_failed")
                #expect(summary(answer.object("delivery")) == "503/3/false")
                let event = try verified(try #require(await receiver.received.first))
                let intent = event.object("data").object("object")
                #expect(intent["status"] as? String == "requires_payment_method")
                #expect(intent.object("last_payment_error")["code"] as? String == "card_declined")
            }
        }
    }

    @Test("an unreachable endpoint is retried and reported with a null status")
    func unreachable() async throws {
        // Port 9 (discard) on loopback: nothing listens there in the test environment.
        try await withSimulator(webhookURL: "http://127.0.0.1:9/hooks", attempts: 2) { client in
            let id = try await createIntent(client)
            let answer = JSONObject(try await control(client, .post, "/simulator/payment_intents/\(id)/succeed").body)
            let delivery = answer.object("delivery")
            #expect(delivery["status"] is NSNull)
            #expect(delivery["attempts"] as? Int == 2)
            #expect(delivery["delivered"] as? Bool == false)
        }
    }

    @Test("without a webhook URL events are recorded, not delivered")
    func recordedOnly() async throws {
        try await withSimulator { client in
            let id = try await createIntent(client)
            let answer = JSONObject(
                try await control(client, .post, "/simulator/payment_intents/\(id)/fail", json: #"{"code":"insufficient_funds","message":"No."}"#)
                    .body)
            #expect(answer["delivery"] is NSNull)
            let events = jsonArray(try await control(client, .get, "/simulator/events").body)
            #expect(events.count == 1)
            #expect(events.first?["delivery"] is NSNull)
            let payload = try #require(events.first?.object("event"))
            #expect(payload.object("data").object("object").object("last_payment_error")["code"] as? String == "insufficient_funds")
        }
    }
}
