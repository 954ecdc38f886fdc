import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import WebhookSignatures

@testable import ProviderSimulator

@Suite("Disputes")
struct DisputeTests {
    /// Checks the Stripe headers and signature of one received webhook and returns its parsed body.
    private func verified(_ received: WebhookReceiver.Received) throws -> JSONObject {
        #expect(received.headers[.contentType] == "application/json; charset=utf-8")
        #expect(received.headers[.userAgent] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        let signature = try #require(received.headers[HTTPField.Name("Stripe-Signature")!])
        try StripeSignature.verify(payload: received.body, header: signature, secrets: [testWebhookSecret], now: Date())
        return JSONObject(bytes: received.body)
    }

    /// Creates an intent for 4000 in `EUR` with `metadata[booking_id]` and marks it succeeded;
    /// returns its id and charge id.
    private func paidEuroIntent(_ client: any TestClientProtocol) async throws -> (id: String, charge: String) {
        let created = try await post(client, "/v1/payment_intents", form: "amount=4000&currency=EUR&metadata[booking_id]=bk_d")
        let id = try #require(JSONObject(created.body)["id"] as? String)
        let succeeded = try await control(client, .post, "/simulator/payment_intents/\(id)/succeed")
        #expect(succeeded.status == .ok)
        let charge = try #require(JSONObject(succeeded.body).object("payment_intent")["latest_charge"] as? String)
        return (id, charge)
    }

    /// `POST /simulator/disputes` with `json`.
    private func openDispute(_ client: any TestClientProtocol, _ json: String) async throws -> TestResponse {
        try await control(client, .post, "/simulator/disputes", json: json)
    }

    /// `POST /simulator/disputes/{id}/close` with `json`.
    private func closeDispute(_ client: any TestClientProtocol, _ id: String, _ json: String) async throws -> TestResponse {
        try await control(client, .post, "/simulator/disputes/\(id)/close", json: json)
    }

    @Test("opening a dispute sends charge.dispute.created then charge.dispute.funds_withdrawn, signed, with the dispute")
    func open() async throws {
        try await withWebhookReceiver { url, receiver in
            try await withSimulator(webhookURL: url) { client in
                let (intent, charge) = try await paidEuroIntent(client)
                let response = try await openDispute(client, #"{"payment_intent":"\#(intent)","amount":1500,"reason":"product_not_received"}"#)
                #expect(response.status == .ok)
                let dispute = JSONObject(response.body)
                let id = try #require(dispute["id"] as? String)
                #expect(id.hasPrefix("dp_") && id.count == 27 && id.dropFirst(3).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
                #expect(dispute["object"] as? String == "dispute")
                #expect(dispute["amount"] as? Int == 1500)
                #expect(dispute["currency"] as? String == "eur")
                #expect(dispute["charge"] as? String == charge)
                #expect(dispute["payment_intent"] as? String == intent)
                #expect(dispute["reason"] as? String == "product_not_received")
                #expect(dispute["status"] as? String == "needs_response")
                let created = try #require(dispute["created"] as? Int)
                #expect(abs(created - Int(Date().timeIntervalSince1970)) < 60)
                #expect(dispute["livemode"] as? Bool == false)
                #expect(dispute.object("metadata").dictionary.isEmpty, "a dispute does not carry the intent's metadata")
                #expect(dispute["is_charge_refundable"] as? Bool == false)
                #expect((dispute["balance_transactions"] as? [Any])?.isEmpty == true)

                // The deliveries end before the answer: payment_intent.succeeded, then the two dispute events.
                let received = await receiver.received
                #expect(received.count == 3)
                let events = try received.dropFirst().map { try verified($0) }
                #expect(events.map { $0["type"] as? String } == ["charge.dispute.created", "charge.dispute.funds_withdrawn"])
                for event in events {
                    let object = event.object("data").object("object")
                    #expect(object["id"] as? String == id)
                    #expect(object["object"] as? String == "dispute")
                    #expect(object["amount"] as? Int == 1500)
                    #expect(object["currency"] as? String == "eur")
                    #expect(object["payment_intent"] as? String == intent)
                    #expect(object["status"] as? String == "needs_response")
                    #expect(object.object("metadata").dictionary.isEmpty)
                }

                let listed = JSONObject(try await get(client, "/v1/events").body).objects("data")
                #expect(
                    listed.map { $0["type"] as? String } == ["charge.dispute.funds_withdrawn", "charge.dispute.created", "payment_intent.succeeded"],
                    "newest first")
                #expect(listed.prefix(2).map { $0["id"] as? String } == events.reversed().map { $0["id"] as? String })
                let filtered = JSONObject(try await get(client, "/v1/events?type=charge.dispute.created").body).objects("data")
                #expect(filtered.map { $0.object("data").object("object")["id"] as? String } == [id])
                let log = jsonArray(try await control(client, .get, "/simulator/events").body)
                #expect(log.map { summary($0.object("delivery")) } == ["200/1/true", "200/1/true", "200/1/true"])
            }
        }
    }

    @Test("the amount defaults to amount_received and the reason to fraudulent; GET /v1/disputes/{id} reads it back")
    func defaultsAndRetrieve() async throws {
        try await withSimulator { client in
            let intent = try await createIntent(client, amount: 2500)
            _ = try await control(client, .post, "/simulator/payment_intents/\(intent)/succeed", json: #"{"amount_received": 2400}"#)
            let opened = try await openDispute(client, #"{"payment_intent":"\#(intent)"}"#)
            #expect(opened.status == .ok)
            let dispute = JSONObject(opened.body)
            #expect(dispute["amount"] as? Int == 2400)
            #expect(dispute["reason"] as? String == "fraudulent")
            #expect(dispute["currency"] as? String == "usd")
            let id = try #require(dispute["id"] as? String)

            let fetched = try await get(client, "/v1/disputes/\(id)")
            #expect(fetched.status == .ok)
            #expect(fetched.headers[.contentType] == "application/json")
            #expect(fetched.body == opened.body)
            let unknown = try await get(client, "/v1/disputes/dp_unknown")
            #expect(unknown.status == .notFound)
            let error = JSONObject(unknown.body).object("error")
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error["code"] as? String == "resource_missing")
            #expect(error["message"] as? String == "No such dispute: 'dp_unknown'")
            #expect(try await get(client, "/v1/disputes/\(id)", apiKey: nil).status == .unauthorized)
            #expect(try await get(client, "/v1/disputes/\(id)", apiKey: "sk_test_other").status == .unauthorized)

            let events = jsonArray(try await control(client, .get, "/simulator/events").body)
            #expect(events.map { $0["type"] as? String } == ["payment_intent.succeeded", "charge.dispute.created", "charge.dispute.funds_withdrawn"])
            #expect(events.last?["delivery"] is NSNull, "recorded, not sent, without a webhook URL")

            #expect(try await control(client, .post, "/simulator/reset").status == .ok)
            #expect(try await get(client, "/v1/disputes/\(id)").status == .notFound, "a reset forgets disputes")
        }
    }

    @Test("closing lost sends charge.dispute.closed with status lost and nothing else")
    func closeLost() async throws {
        try await withWebhookReceiver { url, receiver in
            try await withSimulator(webhookURL: url) { client in
                let (intent, _) = try await paidEuroIntent(client)
                let id = try #require(JSONObject(try await openDispute(client, #"{"payment_intent":"\#(intent)"}"#).body)["id"] as? String)
                let closed = try await closeDispute(client, id, #"{"status":"lost"}"#)
                #expect(closed.status == .ok)
                #expect(JSONObject(closed.body)["status"] as? String == "lost")
                #expect(JSONObject(closed.body)["amount"] as? Int == 4000)

                let received = await receiver.received
                #expect(received.count == 4)
                let event = try verified(try #require(received.last))
                #expect(event["type"] as? String == "charge.dispute.closed")
                let object = event.object("data").object("object")
                #expect(object["id"] as? String == id)
                #expect(object["status"] as? String == "lost")
                #expect(object["payment_intent"] as? String == intent)
                #expect(JSONObject(try await get(client, "/v1/disputes/\(id)").body)["status"] as? String == "lost")
            }
        }
    }

    @Test("closing won sends charge.dispute.closed (won) then charge.dispute.funds_reinstated")
    func closeWon() async throws {
        try await withWebhookReceiver { url, receiver in
            try await withSimulator(webhookURL: url) { client in
                let (intent, _) = try await paidEuroIntent(client)
                let id = try #require(
                    JSONObject(try await openDispute(client, #"{"payment_intent":"\#(intent)","amount":100}"#).body)["id"] as? String)
                let closed = try await closeDispute(client, id, #"{"status":"won"}"#)
                #expect(closed.status == .ok)
                #expect(JSONObject(closed.body)["status"] as? String == "won")

                let received = await receiver.received
                #expect(received.count == 5)
                let events = try received.suffix(2).map { try verified($0) }
                #expect(events.map { $0["type"] as? String } == ["charge.dispute.closed", "charge.dispute.funds_reinstated"])
                for event in events {
                    let object = event.object("data").object("object")
                    #expect(object["id"] as? String == id)
                    #expect(object["status"] as? String == "won")
                    #expect(object["amount"] as? Int == 100)
                }
                let listed = JSONObject(try await get(client, "/v1/events?limit=2").body).objects("data")
                #expect(listed.map { $0["type"] as? String } == ["charge.dispute.funds_reinstated", "charge.dispute.closed"])

                let refund = try await post(client, "/v1/refunds", form: "payment_intent=\(intent)&amount=500")
                #expect(refund.status == .ok, "a won dispute no longer blocks refunds")
            }
        }
    }

    @Test("a dropped dispute webhook is recorded and listed but not sent; the other one still arrives")
    func dropped() async throws {
        try await withWebhookReceiver { url, receiver in
            try await withSimulator(webhookURL: url) { client in
                let (intent, _) = try await paidEuroIntent(client)
                let drop = try await control(client, .post, "/simulator/webhook-drops", json: #"{"type":"charge.dispute.created","count":1}"#)
                #expect(drop.status == .ok)
                #expect(try await openDispute(client, #"{"payment_intent":"\#(intent)"}"#).status == .ok)
                let received = await receiver.received
                #expect(
                    received.map { JSONObject(bytes: $0.body)["type"] as? String } == ["payment_intent.succeeded", "charge.dispute.funds_withdrawn"])
                let log = jsonArray(try await control(client, .get, "/simulator/events").body)
                #expect(
                    log.map { $0["type"] as? String } == ["payment_intent.succeeded", "charge.dispute.created", "charge.dispute.funds_withdrawn"])
                #expect(log.map { $0.object("delivery")["dropped"] as? Bool } == [false, true, false])
                let listed = JSONObject(try await get(client, "/v1/events?type=charge.dispute.created").body).objects("data")
                #expect(listed.count == 1)
            }
        }
    }

    @Test("opening: unknown intent 404, not succeeded 409, amount outside 1...amount_received 400, a second dispute 409")
    func openErrors() async throws {
        try await withSimulator { client in
            let unknown = try await openDispute(client, #"{"payment_intent":"pi_nothere"}"#)
            #expect(unknown.status == .notFound)
            #expect(JSONObject(unknown.body).object("error")["code"] as? String == "not_found")
            #expect(JSONObject(unknown.body).object("error")["message"] as? String == "No such payment_intent: 'pi_nothere'")

            let pending = try await createIntent(client, amount: 3000)
            let notSucceeded = try await openDispute(client, #"{"payment_intent":"\#(pending)"}"#)
            #expect(notSucceeded.status == .conflict)
            #expect(JSONObject(notSucceeded.body).object("error")["message"] is String)
            _ = try await control(client, .post, "/simulator/payment_intents/\(pending)/cancel")
            #expect(try await openDispute(client, #"{"payment_intent":"\#(pending)"}"#).status == .conflict, "canceled")

            let paid = try await createSucceededIntent(client, amount: 3000)
            for body in [
                #"{"payment_intent":"\#(paid)","amount":0}"#, #"{"payment_intent":"\#(paid)","amount":-5}"#,
                #"{"payment_intent":"\#(paid)","amount":3001}"#, #"{"payment_intent":"\#(paid)","amount":12.5}"#,
                #"{"payment_intent":"\#(paid)","amount":"100"}"#, #"{"amount":100}"#, #"{"payment_intent":""}"#, "not json", "",
            ] {
                let response = try await openDispute(client, body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(JSONObject(response.body).object("error")["code"] as? String == "invalid_request", "\(body)")
            }

            #expect(try await openDispute(client, #"{"payment_intent":"\#(paid)","amount":3000}"#).status == .ok, "the whole amount")
            let second = try await openDispute(client, #"{"payment_intent":"\#(paid)","amount":10}"#)
            #expect(second.status == .conflict)
            #expect(JSONObject(second.body).object("error")["code"] as? String == "already_disputed")

            let events = jsonArray(try await control(client, .get, "/simulator/events").body).map { $0["type"] as? String }
            #expect(events.filter { $0?.hasPrefix("charge.dispute.") == true } == ["charge.dispute.created", "charge.dispute.funds_withdrawn"])
        }
    }

    @Test("closing: unknown dispute 404, another status 400, twice 409")
    func closeErrors() async throws {
        try await withSimulator { client in
            #expect(try await closeDispute(client, "dp_nothere", #"{"status":"won"}"#).status == .notFound)
            let paid = try await createSucceededIntent(client)
            let id = try #require(JSONObject(try await openDispute(client, #"{"payment_intent":"\#(paid)"}"#).body)["id"] as? String)
            for body in [#"{"status":"needs_response"}"#, #"{"status":"warning_closed"}"#, #"{"status":"WON"}"#, #"{"status":1}"#, "{}", ""] {
                let response = try await closeDispute(client, id, body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(JSONObject(response.body).object("error")["code"] as? String == "invalid_request", "\(body)")
            }
            #expect(try await closeDispute(client, id, #"{"status":"lost"}"#).status == .ok)
            for body in [#"{"status":"lost"}"#, #"{"status":"won"}"#] {
                let again = try await closeDispute(client, id, body)
                #expect(again.status == .conflict, "\(body)")
                #expect(JSONObject(again.body).object("error")["code"] as? String == "already_closed", "\(body)")
            }
            #expect(JSONObject(try await get(client, "/v1/disputes/\(id)").body)["status"] as? String == "lost")
            let closings = jsonArray(try await control(client, .get, "/simulator/events").body).filter {
                $0["type"] as? String == "charge.dispute.closed"
            }
            #expect(closings.count == 1)
        }
    }

    @Test("a refund of a disputed intent is 400 charge_disputed; an earlier refund's key still replays")
    func refundRefused() async throws {
        try await withSimulator { client in
            let paid = try await createSucceededIntent(client, amount: 3000)
            let earlier = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)&amount=500", idempotencyKey: "refund-1")
            #expect(earlier.status == .ok)
            let charge = try #require(JSONObject(earlier.body)["charge"] as? String)
            let dispute = JSONObject(try await openDispute(client, #"{"payment_intent":"\#(paid)"}"#).body)
            #expect(dispute["charge"] as? String == charge)

            let refused = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)&amount=100", idempotencyKey: "refund-2")
            #expect(refused.status == .badRequest)
            let expected =
                #"{"error":{"type":"invalid_request_error","code":"charge_disputed","#
                + #""message":"Charge \#(charge) has been charged back; cannot issue a refund."}}"#
            #expect(String(buffer: refused.body) == expected)
            let refusedAgain = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)&amount=100", idempotencyKey: "refund-2")
            #expect(refusedAgain.headers[.idempotentReplayed] == "true")
            #expect(refusedAgain.body == refused.body)
            #expect(try await post(client, "/v1/refunds", form: "payment_intent=\(paid)").status == .badRequest, "without a key too")

            let replay = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)&amount=500", idempotencyKey: "refund-1")
            #expect(replay.status == .ok)
            #expect(replay.headers[.idempotentReplayed] == "true")
            #expect(Array(replay.body.readableBytesView) == Array(earlier.body.readableBytesView))

            let id = try #require(dispute["id"] as? String)
            #expect(try await closeDispute(client, id, #"{"status":"lost"}"#).status == .ok)
            let afterLost = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)")
            #expect(JSONObject(afterLost.body).object("error")["code"] as? String == "charge_disputed", "a lost dispute still blocks refunds")

            let refunds = JSONObject(try await get(client, "/v1/refunds?payment_intent=\(paid)").body).objects("data")
            #expect(refunds.count == 1)
            let events = jsonArray(try await control(client, .get, "/simulator/events").body)
            #expect(events.filter { $0["type"] as? String == "charge.refunded" }.count == 1)
        }
    }
}
