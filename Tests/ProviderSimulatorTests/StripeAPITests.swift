import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import ProviderSimulator

@Suite("Stripe-compatible API")
struct StripeAPITests {
    @Test("/v1 calls without the right bearer key get Stripe's 401")
    func authentication() async throws {
        try await withSimulator { client in
            let expected = #"{"error":{"type":"invalid_request_error","code":"api_key_invalid","message":"Invalid API Key provided"}}"#
            let missing = try await post(client, "/v1/payment_intents", form: "amount=100&currency=usd", apiKey: nil)
            #expect(missing.status == .unauthorized)
            #expect(String(buffer: missing.body) == expected)
            let wrong = try await post(client, "/v1/payment_intents", form: "amount=100&currency=usd", apiKey: "sk_test_other")
            #expect(wrong.status == .unauthorized)
            let read = try await get(client, "/v1/payment_intents/pi_unknown", apiKey: "\(testAPIKey)x")
            #expect(read.status == .unauthorized)
            #expect(String(buffer: read.body) == expected)

            let log = jsonArray(try await control(client, .get, "/simulator/requests").body)
            #expect(log.map { $0["status"] as? Int } == [401, 401, 401])
            let intents = try await post(client, "/v1/refunds", form: "payment_intent=pi_x")
            #expect(intents.status == .notFound, "the right key passes")
        }
    }

    @Test("creating an intent returns Stripe's shape, keeps metadata and lower-cases the currency")
    func createIntentShape() async throws {
        try await withSimulator { client in
            let form =
                "amount=2500&currency=USD&metadata[booking_id]=bk_123&metadata%5Bnote%5D=two+words%21&customer=cus_1"
                + "&automatic_payment_methods[enabled]=true"
            let response = try await post(client, "/v1/payment_intents", form: form)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let intent = JSONObject(response.body)
            let id = try #require(intent["id"] as? String)
            #expect(id.hasPrefix("pi_") && id.count == 27 && id.dropFirst(3).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            #expect(intent["object"] as? String == "payment_intent")
            #expect(intent["amount"] as? Int == 2500)
            #expect(intent["amount_received"] as? Int == 0)
            #expect(intent["currency"] as? String == "usd")
            #expect(intent["status"] as? String == "requires_payment_method")
            #expect((intent["client_secret"] as? String)?.hasPrefix("\(id)_secret_") == true)
            #expect(intent.object("metadata").dictionary as? [String: String] == ["booking_id": "bk_123", "note": "two words!"])
            let created = try #require(intent["created"] as? Int)
            #expect(abs(created - Int(Date().timeIntervalSince1970)) < 60)
            #expect(intent["livemode"] as? Bool == false)
            #expect(intent["last_payment_error"] is NSNull)

            let fetched = try await get(client, "/v1/payment_intents/\(id)")
            #expect(fetched.status == .ok)
            #expect(fetched.body == response.body)
        }
    }

    @Test("invalid create parameters are 400 invalid_request_error naming the param; unknown ids 404")
    func createValidation() async throws {
        try await withSimulator { client in
            let cases: [(form: String, param: String, code: String?)] = [
                ("currency=usd", "amount", "parameter_missing"),
                ("amount=12.5&currency=usd", "amount", "parameter_invalid_integer"),
                ("amount=0&currency=usd", "amount", "amount_too_small"),
                ("amount=100", "currency", "parameter_missing"),
                ("amount=100&currency=us", "currency", nil),
                ("amount=100&currency=%ZZ", "", nil),
            ]
            for (form, param, code) in cases {
                let response = try await post(client, "/v1/payment_intents", form: form)
                #expect(response.status == .badRequest, "\(form)")
                let error = JSONObject(response.body).object("error")
                #expect(error["type"] as? String == "invalid_request_error", "\(form)")
                #expect(error["param"] as? String == (param.isEmpty ? nil : param), "\(form)")
                #expect(error["code"] as? String == code, "\(form)")
            }
            let missing = try await get(client, "/v1/payment_intents/pi_doesnotexist")
            #expect(missing.status == .notFound)
            let error = JSONObject(missing.body).object("error")
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error["code"] as? String == "resource_missing")
        }
    }

    @Test("an idempotency key replays the first answer byte for byte and refuses other parameters")
    func idempotency() async throws {
        try await withSimulator { client in
            let first = try await post(
                client, "/v1/payment_intents", form: "amount=2500&currency=usd&metadata[booking_id]=bk_1", idempotencyKey: "k1")
            #expect(first.status == .ok)
            #expect(first.headers[.idempotentReplayed] == nil)
            let replay = try await post(
                client, "/v1/payment_intents", form: "metadata[booking_id]=bk_1&currency=usd&amount=2500", idempotencyKey: "k1")
            #expect(replay.status == .ok)
            #expect(replay.headers[.idempotentReplayed] == "true")
            #expect(Array(replay.body.readableBytesView) == Array(first.body.readableBytesView))

            let otherParameters = try await post(client, "/v1/payment_intents", form: "amount=2600&currency=usd", idempotencyKey: "k1")
            #expect(otherParameters.status == .badRequest)
            #expect(JSONObject(otherParameters.body).object("error")["type"] as? String == "idempotency_error")
            let otherPath = try await post(client, "/v1/refunds", form: "amount=2500&currency=usd&metadata[booking_id]=bk_1", idempotencyKey: "k1")
            #expect(otherPath.status == .badRequest)
            #expect(JSONObject(otherPath.body).object("error")["type"] as? String == "idempotency_error")

            // A validation error is recorded too, and replayed.
            let invalid = try await post(client, "/v1/payment_intents", form: "currency=usd", idempotencyKey: "k2")
            let invalidAgain = try await post(client, "/v1/payment_intents", form: "currency=usd", idempotencyKey: "k2")
            #expect(invalid.status == .badRequest && invalidAgain.status == .badRequest)
            #expect(invalidAgain.headers[.idempotentReplayed] == "true")
            #expect(invalidAgain.body == invalid.body)

            let log = jsonArray(try await control(client, .get, "/simulator/requests").body)
            #expect(log.map { $0["replayed"] as? Bool } == [false, true, false, false, false, true])
            #expect(log.map { $0["idempotency_key"] as? String } == ["k1", "k1", "k1", "k1", "k2", "k2"])
            #expect(log.map { $0["path"] as? String }.first == "/v1/payment_intents")
        }
    }

    @Test("concurrent calls with one idempotency key create one intent")
    func concurrentIdempotency() async throws {
        try await withSimulator { client in
            let bodies = try await withThrowingTaskGroup(of: [UInt8].self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        let response = try await post(client, "/v1/payment_intents", form: "amount=900&currency=eur", idempotencyKey: "same")
                        #expect(response.status == .ok)
                        return Array(response.body.readableBytesView)
                    }
                }
                return try await group.reduce(into: [[UInt8]]()) { $0.append($1) }
            }
            #expect(Set(bodies).count == 1)
            let log = jsonArray(try await control(client, .get, "/simulator/requests").body)
            #expect(log.filter { $0["replayed"] as? Bool == false }.count == 1)
        }
    }

    @Test("refunds: unknown intent 404, not succeeded 400, too large 400, then success and listing")
    func refundRules() async throws {
        try await withSimulator { client in
            let unknown = try await post(client, "/v1/refunds", form: "payment_intent=pi_nothere")
            #expect(unknown.status == .notFound)
            #expect(JSONObject(unknown.body).object("error")["code"] as? String == "resource_missing")

            let pending = try await createIntent(client, amount: 3000)
            let notSucceeded = try await post(client, "/v1/refunds", form: "payment_intent=\(pending)")
            #expect(notSucceeded.status == .badRequest)
            let notSucceededError = JSONObject(notSucceeded.body).object("error")
            #expect(notSucceededError["type"] as? String == "invalid_request_error")
            #expect((notSucceededError["message"] as? String)?.contains("does not have a successful charge") == true)

            let paid = try await createSucceededIntent(client, amount: 3000, bookingID: "bk_9")
            let tooLarge = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)&amount=3001")
            #expect(tooLarge.status == .badRequest)
            #expect(JSONObject(tooLarge.body).object("error")["code"] as? String == "amount_too_large")

            let partial = try await post(
                client, "/v1/refunds", form: "payment_intent=\(paid)&amount=1000&metadata[refund_id]=rf_1&reason=requested_by_customer")
            #expect(partial.status == .ok)
            let refund = JSONObject(partial.body)
            #expect((refund["id"] as? String)?.hasPrefix("re_") == true)
            #expect(refund["object"] as? String == "refund")
            #expect(refund["amount"] as? Int == 1000)
            #expect(refund["currency"] as? String == "usd")
            #expect(refund["payment_intent"] as? String == paid)
            #expect((refund["charge"] as? String)?.hasPrefix("ch_") == true)
            #expect(refund["status"] as? String == "succeeded")
            #expect(refund.object("metadata")["refund_id"] as? String == "rf_1")
            #expect(refund["created"] is Int)

            let overRemaining = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)&amount=2001")
            #expect(JSONObject(overRemaining.body).object("error")["code"] as? String == "amount_too_large")
            let rest = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)")
            #expect(JSONObject(rest.body)["amount"] as? Int == 2000, "the default is what remains")
            #expect(JSONObject(rest.body)["charge"] as? String == refund["charge"] as? String, "one charge per intent")
            let again = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)")
            #expect(again.status == .badRequest)

            let list = JSONObject(try await get(client, "/v1/refunds?payment_intent=\(paid)").body)
            #expect(list["object"] as? String == "list")
            #expect(list["has_more"] as? Bool == false)
            #expect(list.objects("data").map { $0["amount"] as? Int } == [2000, 1000], "newest first")
            #expect(JSONObject(try await get(client, "/v1/refunds?payment_intent=\(pending)").body).objects("data").isEmpty)
        }
    }

    @Test("a transient fault fails calls without recording them; the retry with the same key refunds once")
    func transientFault() async throws {
        try await withSimulator { client in
            let paid = try await createSucceededIntent(client)
            let injected = try await control(client, .post, "/simulator/faults", json: #"{"operation":"refunds","mode":"transient","count":3}"#)
            #expect(injected.status == .ok)
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<4 {
                let response = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)&amount=500", idempotencyKey: "refund-1")
                statuses.append(response.status)
                if response.status == .internalServerError {
                    #expect(JSONObject(response.body).object("error")["type"] as? String == "api_error")
                }
            }
            #expect(statuses == [.internalServerError, .internalServerError, .internalServerError, .ok])
            let replay = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)&amount=500", idempotencyKey: "refund-1")
            #expect(replay.headers[.idempotentReplayed] == "true")

            let refunds = JSONObject(try await get(client, "/v1/refunds?payment_intent=\(paid)").body).objects("data")
            #expect(refunds.count == 1)
            let log = jsonArray(try await control(client, .get, "/simulator/requests").body).filter {
                $0["path"] as? String == "/v1/refunds" && $0["method"] as? String == "POST"
            }
            #expect(log.map { $0["fault"] as? Bool } == [true, true, true, false, false])
            #expect(JSONObject(try await control(client, .get, "/simulator/faults").body).objects("faults").isEmpty, "used up")
        }
    }

    @Test("a refuse fault answers refund_refused until cleared")
    func refuseFault() async throws {
        try await withSimulator { client in
            let paid = try await createSucceededIntent(client)
            _ = try await control(client, .post, "/simulator/faults", json: #"{"operation":"refunds","mode":"refuse","count":null}"#)
            for _ in 0..<2 {
                let refused = try await post(client, "/v1/refunds", form: "payment_intent=\(paid)")
                #expect(refused.status == .badRequest)
                let error = JSONObject(refused.body).object("error")
                #expect(error["type"] as? String == "invalid_request_error")
                #expect(error["code"] as? String == "refund_refused")
            }
            let unaffected = try await post(client, "/v1/payment_intents", form: "amount=100&currency=usd")
            #expect(unaffected.status == .ok, "faults apply to one operation")
            #expect(try await control(client, .delete, "/simulator/faults").status == .ok)
            #expect(try await post(client, "/v1/refunds", form: "payment_intent=\(paid)").status == .ok)

            _ = try await control(client, .post, "/simulator/faults", json: #"{"operation":"payment_intents","mode":"refuse","count":1}"#)
            let refusedIntent = try await post(client, "/v1/payment_intents", form: "amount=100&currency=usd")
            #expect(JSONObject(refusedIntent.body).object("error")["code"] as? String == "payment_intent_refused")
        }
    }

    @Test("bad control input is a 400 JSON error; reset forgets everything")
    func controlInput() async throws {
        try await withSimulator { client in
            for body in [#"{"operation":"charges","mode":"refuse"}"#, #"{"operation":"refunds","mode":"refuse","count":0}"#, "not json", ""] {
                let response = try await control(client, .post, "/simulator/faults", json: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(JSONObject(response.body).object("error")["message"] is String)
            }
            #expect(try await control(client, .post, "/simulator/payment_intents/pi_nope/succeed").status == .notFound)
            let id = try await createSucceededIntent(client)
            #expect(try await control(client, .post, "/simulator/payment_intents/\(id)/succeed").status == .conflict)
            let badCurrency = try await control(client, .post, "/simulator/payment_intents/\(id)/succeed", json: #"{"currency":"euro"}"#)
            #expect(badCurrency.status == .badRequest)

            #expect(try await control(client, .post, "/simulator/reset").status == .ok)
            #expect(try await get(client, "/v1/payment_intents/\(id)").status == .notFound)
            #expect(jsonArray(try await control(client, .get, "/simulator/events").body).isEmpty)
            #expect(jsonArray(try await control(client, .get, "/simulator/requests").body).count == 1)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
        }
    }
}
