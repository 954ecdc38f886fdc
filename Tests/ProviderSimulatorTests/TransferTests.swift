import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import ProviderSimulator

@Suite("Transfers")
struct TransferTests {
    static let form = "amount=4500&currency=EUR&destination=acct_1Host&metadata[payout_id]=po_1"

    @Test("creating a transfer returns Stripe's shape, keeps metadata and lower-cases the currency")
    func create() async throws {
        try await withSimulator { client in
            let response = try await post(client, "/v1/transfers", form: Self.form + "&description=weekly", idempotencyKey: "payout-po_1")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(response.headers[.idempotencyKey] == "payout-po_1")
            let transfer = JSONObject(response.body)
            let id = try #require(transfer["id"] as? String)
            #expect(id.hasPrefix("tr_") && id.count == 27 && id.dropFirst(3).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            #expect(transfer["object"] as? String == "transfer")
            #expect(transfer["amount"] as? Int == 4500)
            #expect(transfer["currency"] as? String == "eur")
            #expect(transfer["destination"] as? String == "acct_1Host")
            #expect(transfer.object("metadata").dictionary as? [String: String] == ["payout_id": "po_1"])
            let created = try #require(transfer["created"] as? Int)
            #expect(abs(created - Int(Date().timeIntervalSince1970)) < 60)
            #expect(transfer["reversed"] as? Bool == false)

            let log = jsonArray(try await control(client, .get, "/simulator/requests").body)
            #expect(log.count == 1)
            #expect(log.first?["method"] as? String == "POST")
            #expect(log.first?["path"] as? String == "/v1/transfers")
            #expect(log.first?["idempotency_key"] as? String == "payout-po_1")
            #expect(log.first?["status"] as? Int == 200)
            #expect(log.first?["replayed"] as? Bool == false)
            #expect(log.first?["fault"] as? Bool == false)
            #expect(jsonArray(try await control(client, .get, "/simulator/events").body).isEmpty, "transfers send no webhook")
        }
    }

    @Test("the same key replays the first transfer; other parameters are an idempotency_error")
    func idempotency() async throws {
        try await withSimulator { client in
            let first = try await post(client, "/v1/transfers", form: Self.form, idempotencyKey: "payout-po_1")
            #expect(first.status == .ok)
            let replay = try await post(
                client, "/v1/transfers", form: "metadata[payout_id]=po_1&destination=acct_1Host&currency=EUR&amount=4500",
                idempotencyKey: "payout-po_1")
            #expect(replay.status == .ok)
            #expect(replay.headers[.idempotentReplayed] == "true")
            #expect(Array(replay.body.readableBytesView) == Array(first.body.readableBytesView))

            let otherAmount = try await post(
                client, "/v1/transfers", form: "amount=4600&currency=EUR&destination=acct_1Host&metadata[payout_id]=po_1",
                idempotencyKey: "payout-po_1")
            #expect(otherAmount.status == .badRequest)
            #expect(JSONObject(otherAmount.body).object("error")["type"] as? String == "idempotency_error")

            let transfers = JSONObject(try await get(client, "/v1/transfers").body).objects("data")
            #expect(transfers.count == 1)
            let log = jsonArray(try await control(client, .get, "/simulator/requests").body).filter { $0["method"] as? String == "POST" }
            #expect(log.map { $0["path"] as? String } == Array(repeating: "/v1/transfers", count: 3))
            #expect(log.map { $0["replayed"] as? Bool } == [false, true, false])
            #expect(log.map { $0["status"] as? Int } == [200, 200, 400])
        }
    }

    @Test("invalid transfer parameters are 400 invalid_request_error naming the param")
    func validation() async throws {
        try await withSimulator { client in
            let cases: [(form: String, param: String, code: String?)] = [
                ("currency=usd&destination=acct_1", "amount", "parameter_missing"),
                ("amount=-5&currency=usd&destination=acct_1", "amount", "amount_too_small"),
                ("amount=ten&currency=usd&destination=acct_1", "amount", "parameter_invalid_integer"),
                ("amount=100&destination=acct_1", "currency", "parameter_missing"),
                ("amount=100&currency=euro&destination=acct_1", "currency", nil),
                ("amount=100&currency=usd", "destination", "parameter_missing"),
                ("amount=100&currency=usd&destination=", "destination", "parameter_missing"),
                ("amount=100&currency=usd&destination=cus_1", "destination", "resource_missing"),
                ("amount=100&currency=usd&destination=acct_", "destination", "resource_missing"),
                // Three-decimal currencies move in steps of 10.
                ("amount=1005&currency=kwd&destination=acct_1", "amount", nil),
                ("amount=1001&currency=BHD&destination=acct_1", "amount", nil),
            ]
            for (form, param, code) in cases {
                let response = try await post(client, "/v1/transfers", form: form)
                #expect(response.status == .badRequest, "\(form)")
                let error = JSONObject(response.body).object("error")
                #expect(error["type"] as? String == "invalid_request_error", "\(form)")
                #expect(error["param"] as? String == param, "\(form)")
                #expect(error["code"] as? String == code, "\(form)")
            }
            #expect(JSONObject(try await get(client, "/v1/transfers").body).objects("data").isEmpty)
            let whole = try await post(client, "/v1/transfers", form: "amount=1000&currency=kwd&destination=acct_1")
            #expect(whole.status == .ok)
        }
    }

    @Test("a transient fault fails the call without recording it; the retry with the same key transfers once")
    func transientFault() async throws {
        try await withSimulator { client in
            let injected = try await control(client, .post, "/simulator/faults", json: #"{"operation":"transfers","mode":"transient","count":1}"#)
            #expect(injected.status == .ok)
            #expect(JSONObject(injected.body).objects("faults").map { $0["operation"] as? String } == ["transfers"])

            let failed = try await post(client, "/v1/transfers", form: Self.form, idempotencyKey: "payout-po_1")
            #expect(failed.status == .internalServerError)
            #expect(JSONObject(failed.body).object("error")["type"] as? String == "api_error")
            let retried = try await post(client, "/v1/transfers", form: Self.form, idempotencyKey: "payout-po_1")
            #expect(retried.status == .ok)
            #expect(retried.headers[.idempotentReplayed] == nil, "the faulted call was not recorded")

            let transfers = JSONObject(try await get(client, "/v1/transfers").body).objects("data")
            #expect(transfers.map { $0["id"] as? String } == [JSONObject(retried.body)["id"] as? String])
            let log = jsonArray(try await control(client, .get, "/simulator/requests").body).filter { $0["path"] as? String == "/v1/transfers" }
            let posts = log.filter { $0["method"] as? String == "POST" }
            #expect(posts.count == 2)
            #expect(posts.map { $0["idempotency_key"] as? String } == ["payout-po_1", "payout-po_1"])
            #expect(posts.map { $0["status"] as? Int } == [500, 200])
            #expect(posts.map { $0["fault"] as? Bool } == [true, false])
            #expect(posts.map { $0["replayed"] as? Bool } == [false, false])
            #expect(JSONObject(try await control(client, .get, "/simulator/faults").body).objects("faults").isEmpty, "used up")
        }
    }

    @Test("a refuse fault answers transfer_refused until cleared and affects only transfers")
    func refuseFault() async throws {
        try await withSimulator { client in
            _ = try await control(client, .post, "/simulator/faults", json: #"{"operation":"transfers","mode":"refuse"}"#)
            for _ in 0..<2 {
                let refused = try await post(client, "/v1/transfers", form: Self.form, idempotencyKey: "payout-po_1")
                #expect(refused.status == .badRequest)
                let error = JSONObject(refused.body).object("error")
                #expect(error["type"] as? String == "invalid_request_error")
                #expect(error["code"] as? String == "transfer_refused")
                #expect((error["message"] as? String)?.contains("cannot receive transfers") == true)
            }
            #expect(try await post(client, "/v1/payment_intents", form: "amount=100&currency=usd").status == .ok)
            #expect(try await control(client, .delete, "/simulator/faults").status == .ok)
            #expect(try await post(client, "/v1/transfers", form: Self.form, idempotencyKey: "payout-po_1").status == .ok)

            let log = jsonArray(try await control(client, .get, "/simulator/requests").body).filter { $0["path"] as? String == "/v1/transfers" }
            #expect(log.map { $0["fault"] as? Bool } == [true, true, false])
            #expect(log.map { $0["status"] as? Int } == [400, 400, 200])
        }
    }

    @Test("transfers are read by id (404 when unknown) and listed newest first; reset forgets them")
    func readAndList() async throws {
        try await withSimulator { client in
            var ids: [String] = []
            for (amount, destination) in [(100, "acct_A"), (200, "acct_B"), (300, "acct_A")] {
                let response = try await post(client, "/v1/transfers", form: "amount=\(amount)&currency=usd&destination=\(destination)")
                #expect(response.status == .ok)
                ids.append(try #require(JSONObject(response.body)["id"] as? String))
                let fetched = try await get(client, "/v1/transfers/\(ids[ids.count - 1])")
                #expect(fetched.status == .ok)
                #expect(fetched.body == response.body)
            }

            let missing = try await get(client, "/v1/transfers/tr_doesnotexist")
            #expect(missing.status == .notFound)
            let error = JSONObject(missing.body).object("error")
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error["code"] as? String == "resource_missing")

            let list = JSONObject(try await get(client, "/v1/transfers").body)
            #expect(list["object"] as? String == "list")
            #expect(list["has_more"] as? Bool == false)
            #expect(list.objects("data").map { $0["id"] as? String } == ids.reversed(), "newest first")
            #expect(list.objects("data").map { $0["amount"] as? Int } == [300, 200, 100])
            let toA = JSONObject(try await get(client, "/v1/transfers?destination=acct_A").body).objects("data")
            #expect(toA.map { $0["amount"] as? Int } == [300, 100])
            #expect(try await get(client, "/v1/transfers", apiKey: nil).status == .unauthorized)

            #expect(try await control(client, .post, "/simulator/reset").status == .ok)
            #expect(try await get(client, "/v1/transfers/\(ids[0])").status == .notFound)
            #expect(JSONObject(try await get(client, "/v1/transfers").body).objects("data").isEmpty)
        }
    }
}
