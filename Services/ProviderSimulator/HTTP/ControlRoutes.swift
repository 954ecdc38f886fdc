import Foundation
import Hummingbird
import Logging

/// The local control API (`/simulator/...`, JSON, no authentication): drive intents to success or
/// failure, open and close disputes, inject faults, and read back what the simulator saw and sent.
struct ControlRoutes: Sendable {
    static let maximumBodySize = 64 * 1024

    let state: SimulatorState
    let webhooks: WebhookSender
    let logger: Logger

    private struct SucceedBody: Decodable {
        var amountReceived: Int?
        var currency: String?
        var created: Int?

        enum CodingKeys: String, CodingKey {
            case amountReceived = "amount_received"
            case currency, created
        }
    }

    private struct FailBody: Decodable {
        var code: String?
        var message: String?
    }

    private struct CancelBody: Decodable {
        var reason: String?
    }

    private struct DisputeBody: Decodable {
        var paymentIntent: String?
        var amount: Int?
        var reason: String?

        enum CodingKeys: String, CodingKey {
            case paymentIntent = "payment_intent"
            case amount, reason
        }
    }

    private struct CloseDisputeBody: Decodable {
        var status: String?
    }

    private struct DropBody: Decodable {
        var type: String
        var count: Int?
    }

    private struct FaultBody: Decodable {
        var operation: Fault.Operation
        var mode: Fault.Mode
        var count: Int?
    }

    func add(to router: Router<BasicRequestContext>) {
        let control = router.group("simulator")
        control.post("payment_intents/{id}/succeed") { request, context in
            await handle { () async throws(ControlError) -> Response in
                let body = try await decode(SucceedBody.self, request, expected: #"{"amount_received": Int, "currency": "eur", "created": Int}"#)
                var overrides = SimulatorState.SuccessOverrides()
                if let amount = body?.amountReceived {
                    guard amount >= 0 else { throw .badRequest("amount_received must not be negative") }
                    overrides.amountReceived = amount
                }
                if let currency = body?.currency {
                    guard currency.utf8.count == 3, currency.unicodeScalars.allSatisfy({ $0.isASCII && $0.properties.isAlphabetic }) else {
                        throw .badRequest("currency must be three letters")
                    }
                    overrides.currency = currency.lowercased()
                }
                if let created = body?.created {
                    guard created >= 0 else { throw .badRequest("created must be unix seconds") }
                    overrides.created = created
                }
                let outcome = try await state.succeed(context.parameters.get("id") ?? "", overrides: overrides)
                return await send(outcome.event, intent: outcome.intent)
            }
        }
        control.post("payment_intents/{id}/fail") { request, context in
            await handle { () async throws(ControlError) -> Response in
                let body = try await decode(FailBody.self, request, expected: #"{"code": "card_declined", "message": "..."}"#)
                let error = SimulatedPaymentIntent.PaymentError(
                    code: body?.code.flatMap { $0.isEmpty ? nil : $0 } ?? "card_declined",
                    message: body?.message.flatMap { $0.isEmpty ? nil : $0 } ?? "Your card was declined.")
                let outcome = try await state.fail(context.parameters.get("id") ?? "", error: error)
                return await send(outcome.event, intent: outcome.intent)
            }
        }
        control.post("payment_intents/{id}/cancel") { request, context in
            await handle { () async throws(ControlError) -> Response in
                let body = try await decode(CancelBody.self, request, expected: #"{"reason": "abandoned"}"#)
                let reason = body?.reason.flatMap { $0.isEmpty ? nil : $0 } ?? "abandoned"
                let outcome = try await state.cancel(context.parameters.get("id") ?? "", reason: reason)
                return await send(outcome.event, intent: outcome.intent)
            }
        }
        control.post("disputes") { request, _ in
            await handle { () async throws(ControlError) -> Response in
                let expected = #"{"payment_intent": "pi_...", "amount": Int, "reason": "fraudulent"}"#
                guard let body = try await decode(DisputeBody.self, request, expected: expected),
                    let paymentIntent = body.paymentIntent, !paymentIntent.isEmpty
                else {
                    throw .badRequest("expected a JSON body \(expected)")
                }
                let reason = body.reason.flatMap { $0.isEmpty ? nil : $0 } ?? "fraudulent"
                let outcome = try await state.openDispute(paymentIntent: paymentIntent, amount: body.amount, reason: reason)
                logger.info("dispute opened", metadata: ["payment_intent": "\(paymentIntent)"])
                return await send(outcome.events, answering: outcome.dispute)
            }
        }
        control.post("disputes/{id}/close") { request, context in
            await handle { () async throws(ControlError) -> Response in
                let expected = #"{"status": "won"|"lost"}"#
                let body = try await decode(CloseDisputeBody.self, request, expected: expected)
                guard let status = body?.status.flatMap(SimulatedDispute.Status.init(rawValue:)), status.isClosed else {
                    throw .badRequest("expected a JSON body \(expected)")
                }
                let id = context.parameters.get("id") ?? ""
                let outcome = try await state.closeDispute(id, as: status)
                logger.info("dispute closed", metadata: ["dispute": "\(id)", "status": "\(status.rawValue)"])
                return await send(outcome.events, answering: outcome.dispute)
            }
        }
        control.post("faults") { request, _ in
            await handle { () async throws(ControlError) -> Response in
                let expected =
                    #"{"operation": "payment_intents"|"refunds"|"transfers", "mode": "transient"|"refuse"|"rate_limited", "count": Int|null}"#
                guard let body = try await decode(FaultBody.self, request, expected: expected) else {
                    throw .badRequest("expected a JSON body \(expected)")
                }
                if let count = body.count, count < 1 { throw .badRequest("count must be at least 1, or null for until cleared") }
                let faults = await state.inject(Fault(operation: body.operation, mode: body.mode, remaining: body.count))
                logger.info("fault injected", metadata: ["operation": "\(body.operation.rawValue)", "mode": "\(body.mode.rawValue)"])
                return JSONResponse.make(json: faults)
            }
        }
        control.post("webhook-drops") { request, _ in
            await handle { () async throws(ControlError) -> Response in
                let expected = #"{"type": "payment_intent.succeeded", "count": Int|null}"#
                guard let body = try await decode(DropBody.self, request, expected: expected), !body.type.isEmpty else {
                    throw .badRequest("expected a JSON body \(expected)")
                }
                if let count = body.count, count < 1 { throw .badRequest("count must be at least 1, or null for until cleared") }
                webhooks.drop(type: body.type, count: body.count)
                logger.info("webhooks will be dropped", metadata: ["event_type": "\(body.type)", "count": "\(body.count.map(String.init) ?? "all")"])
                return JSONResponse.make(json: webhooks.dropList)
            }
        }
        control.get("webhook-drops") { _, _ in JSONResponse.make(json: webhooks.dropList) }
        control.delete("webhook-drops") { _, _ in
            webhooks.clearDrops()
            return JSONResponse.make(json: webhooks.dropList)
        }
        control.get("faults") { _, _ in JSONResponse.make(json: await state.faultList) }
        control.delete("faults") { _, _ in JSONResponse.make(json: await state.clearFaults()) }
        control.get("requests") { _, _ in JSONResponse.make(json: await state.requestLog) }
        control.get("events") { _, _ in JSONResponse.make(json: await state.eventLog) }
        control.post("reset") { _, _ in
            await state.reset()
            webhooks.clearDrops()
            logger.info("simulator reset")
            return JSONResponse.make(json: .object([("reset", .bool(true))]))
        }
    }

    /// Delivers `event` now (with the retries) and answers with the outcome.
    private func send(_ event: StripeEvent, intent: SimulatorJSON) async -> Response {
        let delivery = await webhooks.deliver(event)
        if let delivery { await state.recordDelivery(eventID: event.id, delivery: delivery) }
        return JSONResponse.make(
            json: .object([
                ("event_id", .string(event.id)),
                ("type", .string(event.type)),
                ("delivery", delivery?.json ?? .null),
                ("payment_intent", intent),
            ]))
    }

    /// Delivers `events` one after the other (each with its retries, so they arrive in order) and
    /// answers with `object`.
    private func send(_ events: [StripeEvent], answering object: SimulatorJSON) async -> Response {
        for event in events {
            if let delivery = await webhooks.deliver(event) { await state.recordDelivery(eventID: event.id, delivery: delivery) }
        }
        return JSONResponse.make(json: object)
    }

    private func handle(_ body: () async throws(ControlError) -> Response) async -> Response {
        do {
            return try await body()
        } catch {
            return JSONResponse.make(status: error.status, json: error.json)
        }
    }

    /// The decoded body; `nil` for an empty body.
    private func decode<Body: Decodable>(_ type: Body.Type, _ request: Request, expected: String) async throws(ControlError) -> Body? {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maximumBodySize)
        } catch {
            throw ControlError(status: 413, code: "body_too_large", message: "the body is larger than \(Self.maximumBodySize) bytes")
        }
        let bytes = Array(buffer.readableBytesView)
        guard bytes.contains(where: { !Set<UInt8>([0x20, 0x09, 0x0A, 0x0D]).contains($0) }) else { return nil }
        do {
            return try JSONDecoder().decode(Body.self, from: Data(bytes))
        } catch {
            throw .badRequest("expected a JSON body \(expected)")
        }
    }
}
