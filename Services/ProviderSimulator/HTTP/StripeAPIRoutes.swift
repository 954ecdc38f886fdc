import HTTPTypes
import Hummingbird
import Logging
import ServiceKit
import WebhookSignatures

/// The Stripe-compatible `/v1` API (payment intents, refunds, transfers, disputes): form-encoded requests, JSON
/// answers, bearer-key authentication, idempotency keys, injected faults, and `charge.refunded` sent
/// after the refund's answer.
struct StripeAPIRoutes: Sendable {
    /// Larger bodies are refused with 413.
    static let maximumBodySize = 256 * 1024

    let state: SimulatorState
    let webhooks: WebhookSender
    let apiKey: String
    let logger: Logger

    func add(to router: Router<BasicRequestContext>) {
        let v1 = router.group("v1")
        v1.post("payment_intents") { request, _ in try await create(.paymentIntents, request) }
        v1.get("payment_intents/{id}") { request, context in
            try await read(request) { call in await state.retrievePaymentIntent(context.parameters.get("id") ?? "", call: call) }
        }
        v1.post("refunds") { request, _ in try await create(.refunds, request) }
        v1.get("refunds") { request, _ in
            try await read(request) { call in await state.listRefunds(paymentIntent: queryParameter("payment_intent", of: request), call: call) }
        }
        v1.get("refunds/{id}") { request, context in
            try await read(request) { call in await state.retrieveRefund(context.parameters.get("id") ?? "", call: call) }
        }
        v1.get("disputes/{id}") { request, context in
            try await read(request) { call in await state.retrieveDispute(context.parameters.get("id") ?? "", call: call) }
        }
        v1.get("events") { request, _ in
            try await read(request) { call in
                let created = queryParameter("created[gte]", of: request)
                let limit = queryParameter("limit", of: request)
                let createdAtLeast = created.flatMap { Int($0) }
                let pageSize = limit.flatMap { Int($0) } ?? 10
                guard created == nil || createdAtLeast != nil, (1...100).contains(pageSize) else {
                    return await state.reject(call, error: StripeError(status: 400, message: "created[gte] must be unix seconds and limit 1 to 100."))
                }
                return await state.listEvents(
                    createdAtLeast: createdAtLeast, type: queryParameter("type", of: request),
                    startingAfter: queryParameter("starting_after", of: request), limit: pageSize, call: call)
            }
        }
        v1.post("transfers") { request, _ in try await create(.transfers, request) }
        v1.get("transfers") { request, _ in
            try await read(request) { call in await state.listTransfers(destination: queryParameter("destination", of: request), call: call) }
        }
        v1.get("transfers/{id}") { request, context in
            try await read(request) { call in await state.retrieveTransfer(context.parameters.get("id") ?? "", call: call) }
        }
    }

    private func create(_ operation: Fault.Operation, _ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: Self.maximumBodySize)
        let key = request.headers[.idempotencyKey].flatMap { $0.isEmpty ? nil : $0 }
        let call = SimulatorState.Call(method: "POST", path: request.uri.path, idempotencyKey: key)
        guard isAuthorized(request) else { return respond(await state.reject(call, error: .invalidAPIKey), key: key) }
        if let key, key.count > 255 {
            let error = StripeError(status: 400, message: "Idempotency-Key must be at most 255 characters.")
            return respond(await state.reject(call, error: error), key: nil)
        }
        let form: StripeForm
        do {
            form = try StripeForm(body: Array(body.readableBytesView))
        } catch {
            return respond(await state.reject(call, error: .malformedBody(error.reason)), key: key)
        }
        let answer = await state.create(operation, call: call, form: form)
        logger.info(
            "stripe api call",
            metadata: ["path": "\(call.path)", "status": "\(answer.status)", "replayed": "\(answer.replayed)"])
        return respond(answer, key: key)
    }

    private func read(_ request: Request, _ perform: (SimulatorState.Call) async -> SimulatorState.Answer) async throws -> Response {
        let call = SimulatorState.Call(method: "GET", path: request.uri.path, idempotencyKey: nil)
        guard isAuthorized(request) else { return respond(await state.reject(call, error: .invalidAPIKey), key: nil) }
        return respond(await perform(call), key: nil)
    }

    /// A list filter from the query string; `nil` when absent, empty or unreadable.
    private func queryParameter(_ name: String, of request: Request) -> String? {
        let query = (try? StripeForm(parsing: request.uri.query ?? "")) ?? StripeForm(pairs: [])
        return query[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    private func isAuthorized(_ request: Request) -> Bool {
        guard let authorization = request.headers[.authorization] else { return false }
        return constantTimeEquals(authorization.utf8, "Bearer \(apiKey)".utf8)
    }

    private func respond(_ answer: SimulatorState.Answer, key: String?) -> Response {
        var headers = HTTPFields()
        if let key { headers[.idempotencyKey] = key }
        if answer.replayed { headers[.idempotentReplayed] = "true" }
        // A rate-limited call (the rate_limited fault) says when to come back, as Stripe does.
        if answer.status == 429 { headers[.retryAfter] = "1" }
        guard let event = answer.event, webhooks.isEnabled else {
            return JSONResponse.make(status: answer.status, body: answer.body, headers: headers)
        }
        let state = state
        let webhooks = webhooks
        return JSONResponse.make(status: answer.status, body: answer.body, headers: headers) {
            webhooks.deliverInBackground(event) { delivery in await state.recordDelivery(eventID: event.id, delivery: delivery) }
        }
    }
}
