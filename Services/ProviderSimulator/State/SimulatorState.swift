import Foundation
import ServiceKit

/// Everything the simulator remembers, in memory: payment intents, refunds, transfers, disputes,
/// idempotency records, injected faults, the request log and the events sent.
///
/// Each API call runs as one actor call (fault check, idempotency lookup, execution, recording), so
/// concurrent calls with the same idempotency key execute once.
actor SimulatorState {
    /// What a `/v1` call asked, for the log and the idempotency record.
    struct Call: Sendable {
        let method: String
        let path: String
        let idempotencyKey: String?
    }

    /// The answer to a `/v1` call, and the event to send once the answer is out.
    struct Answer: Sendable {
        let status: Int
        let body: [UInt8]
        let replayed: Bool
        let event: StripeEvent?
    }

    /// Overrides for `POST /simulator/payment_intents/{id}/succeed`.
    struct SuccessOverrides: Sendable {
        var amountReceived: Int?
        var currency: String?
        var created: Int?
    }

    private struct EventRecord {
        let event: StripeEvent
        var delivery: WebhookDelivery?
    }

    private let now: @Sendable () -> Int
    private var intents: [String: SimulatedPaymentIntent] = [:]
    private var refunds: [String: SimulatedRefund] = [:]
    /// SimulatedRefund ids, oldest first.
    private var refundOrder: [String] = []
    private var transfers: [String: SimulatedTransfer] = [:]
    /// SimulatedTransfer ids, oldest first.
    private var transferOrder: [String] = []
    private var chargeCreated: [String: Int] = [:]
    private var disputes = DisputeLedger()
    private var idempotency: [String: IdempotencyRecord] = [:]
    private var faults: [Fault.Operation: Fault] = [:]
    private var requests: [RequestLogEntry] = []
    private var events: [EventRecord] = []
    private var eventIndex: [String: Int] = [:]

    /// `now` gives the current unix time in seconds (`created` fields).
    init(now: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }) {
        self.now = now
    }

    // MARK: Stripe API

    /// Runs a creation (`POST /v1/payment_intents`, `/v1/refunds`, `/v1/transfers`): an active fault
    /// answers first and is not recorded; then a recorded idempotency key replays (same method, path
    /// and parameters) or conflicts; otherwise the call executes and, with a key, its answer is recorded.
    func create(_ operation: Fault.Operation, call: Call, form: StripeForm) -> Answer {
        if let error = consumeFault(operation) {
            return answer(call, status: error.status, body: error.json.bytes, fault: true)
        }
        if let key = call.idempotencyKey, let record = idempotency[key] {
            guard record.method == call.method, record.path == call.path, record.parameters == form.canonical else {
                let error = StripeError(
                    status: 400, type: "idempotency_error",
                    message: "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                        + "Try using a key other than '\(key)' if you meant to execute a different request.")
                return answer(call, status: error.status, body: error.json.bytes)
            }
            return answer(call, status: record.status, body: record.body, replayed: true)
        }
        let status: Int
        let body: [UInt8]
        var event: StripeEvent?
        do throws(StripeError) {
            switch operation {
            case .paymentIntents:
                body = try createPaymentIntent(form).bytes
            case .refunds:
                let (refund, refundEvent) = try createRefund(form, idempotencyKey: call.idempotencyKey)
                body = refund.bytes
                event = refundEvent
            case .transfers:
                body = try createTransfer(form).bytes
            }
            status = 200
        } catch {
            status = error.status
            body = error.json.bytes
        }
        if let key = call.idempotencyKey {
            idempotency[key] = IdempotencyRecord(
                method: call.method, path: call.path, parameters: form.canonical, status: status, body: body)
        }
        if let event { record(event) }
        return answer(call, status: status, body: body, event: event)
    }

    /// `GET /v1/payment_intents/{id}`.
    func retrievePaymentIntent(_ id: String, call: Call) -> Answer {
        guard let intent = intents[id] else {
            return answer(call, error: .noSuch("payment_intent", id))
        }
        return answer(call, status: 200, body: intent.json.bytes)
    }

    /// `GET /v1/refunds/{id}`.
    func retrieveRefund(_ id: String, call: Call) -> Answer {
        guard let refund = refunds[id] else {
            return answer(call, error: .noSuch("refund", id))
        }
        return answer(call, status: 200, body: refund.json.bytes)
    }

    /// `GET /v1/refunds[?payment_intent=...]`: newest first, never paginated.
    func listRefunds(paymentIntent: String?, call: Call) -> Answer {
        let selected = refundOrder.reversed().compactMap { refunds[$0] }.filter { paymentIntent == nil || $0.paymentIntent == paymentIntent }
        let list = SimulatorJSON.object([
            ("object", .string("list")),
            ("data", .array(selected.map(\.json))),
            ("has_more", .bool(false)),
            ("url", .string("/v1/refunds")),
        ])
        return answer(call, status: 200, body: list.bytes)
    }

    /// `GET /v1/events`, as Stripe lists them: newest first, only those created at or after
    /// `createdAtLeast` (unix seconds) and of `type` when given, after the event `startingAfter` names in that order
    /// (the cursor of the next page), at most `limit` (1-100, default 10), with `has_more`. An unknown
    /// `starting_after` is 400 like Stripe's.
    func listEvents(createdAtLeast: Int?, type: String?, startingAfter: String?, limit: Int, call: Call) -> Answer {
        var newestFirst = events.reversed().map(\.event)[...]
        if let startingAfter {
            guard let position = newestFirst.firstIndex(where: { $0.id == startingAfter }) else {
                return answer(call, error: .noSuch("event", startingAfter, param: "starting_after"))
            }
            newestFirst = newestFirst[(position + 1)...]
        }
        let matching = newestFirst.lazy.filter { event in
            createdAtLeast.map { event.created >= $0 } ?? true && type.map { event.type == $0 } ?? true
        }
        let page = Array(matching.prefix(limit + 1))
        let list = SimulatorJSON.object([
            ("object", .string("list")),
            ("data", .array(page.prefix(limit).map { .raw($0.payload) })),
            ("has_more", .bool(page.count > limit)),
            ("url", .string("/v1/events")),
        ])
        return answer(call, status: 200, body: list.bytes)
    }

    /// `GET /v1/transfers/{id}`.
    func retrieveTransfer(_ id: String, call: Call) -> Answer {
        guard let transfer = transfers[id] else {
            return answer(call, error: .noSuch("transfer", id))
        }
        return answer(call, status: 200, body: transfer.json.bytes)
    }

    /// `GET /v1/transfers[?destination=...]`: newest first, never paginated.
    func listTransfers(destination: String?, call: Call) -> Answer {
        let selected = transferOrder.reversed().compactMap { transfers[$0] }.filter { destination == nil || $0.destination == destination }
        let list = SimulatorJSON.object([
            ("object", .string("list")),
            ("data", .array(selected.map(\.json))),
            ("has_more", .bool(false)),
            ("url", .string("/v1/transfers")),
        ])
        return answer(call, status: 200, body: list.bytes)
    }

    /// `GET /v1/disputes/{id}`.
    func retrieveDispute(_ id: String, call: Call) -> Answer {
        guard let dispute = disputes[id] else {
            return answer(call, error: .noSuch("dispute", id))
        }
        return answer(call, status: 200, body: dispute.json.bytes)
    }

    /// Logs a call answered before reaching the state (authentication, unreadable body).
    func reject(_ call: Call, error: StripeError) -> Answer {
        answer(call, error: error)
    }

    // MARK: Control API

    /// Marks an intent succeeded, creates its charge, and returns the `payment_intent.succeeded` event
    /// (recorded, not yet delivered).
    func succeed(_ id: String, overrides: SuccessOverrides) throws(ControlError) -> (event: StripeEvent, intent: SimulatorJSON) {
        guard var intent = intents[id] else { throw .unknownIntent(id) }
        try Self.requireOpen(intent)
        let time = now()
        intent.status = .succeeded
        intent.amountReceived = overrides.amountReceived ?? intent.amount
        if let currency = overrides.currency { intent.currency = currency }
        intent.lastPaymentError = nil
        let chargeID = StripeIdentifier.make("ch_")
        intent.chargeID = chargeID
        chargeCreated[chargeID] = time
        intents[id] = intent
        let event = StripeEvent(type: "payment_intent.succeeded", object: intent.json, created: overrides.created ?? time)
        record(event)
        return (event, intent.json)
    }

    /// Records a declined attempt (`last_payment_error`; the intent stays `requires_payment_method`)
    /// and returns the `payment_intent.payment_failed` event.
    func fail(_ id: String, error: SimulatedPaymentIntent.PaymentError) throws(ControlError) -> (event: StripeEvent, intent: SimulatorJSON) {
        guard var intent = intents[id] else { throw .unknownIntent(id) }
        try Self.requireOpen(intent)
        intent.lastPaymentError = error
        intents[id] = intent
        let event = StripeEvent(type: "payment_intent.payment_failed", object: intent.json, created: now())
        record(event)
        return (event, intent.json)
    }

    /// Cancels an intent that has not succeeded (it can never be paid afterwards) and returns the
    /// `payment_intent.canceled` event.
    func cancel(_ id: String, reason: String) throws(ControlError) -> (event: StripeEvent, intent: SimulatorJSON) {
        guard var intent = intents[id] else { throw .unknownIntent(id) }
        try Self.requireOpen(intent)
        intent.status = .canceled
        intent.cancellationReason = reason
        intents[id] = intent
        let event = StripeEvent(type: "payment_intent.canceled", object: intent.json, created: now())
        record(event)
        return (event, intent.json)
    }

    /// An intent that succeeded or was canceled takes no further payment attempt (409).
    private static func requireOpen(_ intent: SimulatedPaymentIntent) throws(ControlError) {
        switch intent.status {
        case .requiresPaymentMethod: return
        case .succeeded:
            throw ControlError(status: 409, code: "already_succeeded", message: "SimulatedPaymentIntent '\(intent.id)' has already succeeded.")
        case .canceled:
            throw ControlError(status: 409, code: "canceled", message: "SimulatedPaymentIntent '\(intent.id)' was canceled.")
        }
    }

    /// Opens a dispute on a succeeded intent (see ``DisputeLedger/open(on:amount:reason:created:)`` for
    /// the rules) and returns it with its `charge.dispute.created` and `charge.dispute.funds_withdrawn`
    /// events, in that order (recorded, not yet delivered).
    func openDispute(
        paymentIntent id: String, amount: Int?, reason: String
    ) throws(ControlError) -> (dispute: SimulatorJSON, events: [StripeEvent]) {
        guard let intent = intents[id] else { throw .unknownIntent(id) }
        let time = now()
        let dispute = try disputes.open(on: intent, amount: amount, reason: reason, created: time)
        let events = ["charge.dispute.created", "charge.dispute.funds_withdrawn"].map { type in
            StripeEvent(type: type, object: dispute.json, created: time)
        }
        for event in events { record(event) }
        return (dispute.json, events)
    }

    /// Closes an open dispute as `won` or `lost` and returns it with its `charge.dispute.closed` event,
    /// followed for `won` by `charge.dispute.funds_reinstated` (recorded, not yet delivered).
    func closeDispute(_ id: String, as status: SimulatedDispute.Status) throws(ControlError) -> (dispute: SimulatorJSON, events: [StripeEvent]) {
        let dispute = try disputes.close(id, as: status)
        let time = now()
        let types = status == .won ? ["charge.dispute.closed", "charge.dispute.funds_reinstated"] : ["charge.dispute.closed"]
        let events = types.map { type in StripeEvent(type: type, object: dispute.json, created: time) }
        for event in events { record(event) }
        return (dispute.json, events)
    }

    /// Stores how an event's delivery ended (ignored when the event was reset away).
    func recordDelivery(eventID: String, delivery: WebhookDelivery) {
        guard let index = eventIndex[eventID] else { return }
        events[index].delivery = delivery
    }

    /// Installs `fault`, replacing any fault of the same operation.
    func inject(_ fault: Fault) -> SimulatorJSON {
        faults[fault.operation] = fault
        return faultList
    }

    /// Removes every fault.
    func clearFaults() -> SimulatorJSON {
        faults.removeAll()
        return faultList
    }

    /// `{"faults":[...]}`.
    var faultList: SimulatorJSON {
        .object([("faults", .array(Fault.Operation.allCases.compactMap { faults[$0]?.json }))])
    }

    /// Every `/v1` call in order.
    var requestLog: SimulatorJSON {
        .array(requests.map(\.json))
    }

    /// Every event in the order it was created, with its delivery once known.
    var eventLog: SimulatorJSON {
        .array(
            events.map { record in
                .object([
                    ("id", .string(record.event.id)),
                    ("type", .string(record.event.type)),
                    ("created", .int(record.event.created)),
                    ("delivery", record.delivery?.json ?? .null),
                    ("event", .raw(record.event.payload)),
                ])
            })
    }

    /// Forgets everything.
    func reset() {
        intents.removeAll()
        refunds.removeAll()
        refundOrder.removeAll()
        transfers.removeAll()
        transferOrder.removeAll()
        chargeCreated.removeAll()
        disputes.removeAll()
        idempotency.removeAll()
        faults.removeAll()
        requests.removeAll()
        events.removeAll()
        eventIndex.removeAll()
    }

    // MARK: Execution

    private func createPaymentIntent(_ form: StripeForm) throws(StripeError) -> SimulatorJSON {
        let amount = try Self.requiredAmount(form)
        let currency = try Self.currency(form)
        let metadata = try Self.metadata(form)
        let intent = SimulatedPaymentIntent(amount: amount, currency: currency, metadata: metadata, created: now())
        intents[intent.id] = intent
        return intent.json
    }

    private func createTransfer(_ form: StripeForm) throws(StripeError) -> SimulatorJSON {
        let amount = try Self.requiredAmount(form)
        let currency = try Self.currency(form)
        // Stripe moves three-decimal currencies only in steps of 10 (the last digit 0).
        if Self.threeDecimalCurrencies.contains(currency), amount % 10 != 0 {
            throw StripeError(
                status: 400, message: "Amounts in \(currency.uppercased()) must be a multiple of 10 (the last digit 0).", param: "amount")
        }
        guard let destination = form["destination"], !destination.isEmpty else { throw .missing("destination") }
        guard destination.hasPrefix("acct_"), destination.utf8.count > "acct_".utf8.count else {
            throw StripeError(status: 400, code: "resource_missing", message: "No such destination: '\(destination)'", param: "destination")
        }
        let metadata = try Self.metadata(form)
        let transfer = SimulatedTransfer(
            id: StripeIdentifier.make("tr_"), amount: amount, currency: currency, destination: destination, metadata: metadata,
            created: now())
        transfers[transfer.id] = transfer
        transferOrder.append(transfer.id)
        return transfer.json
    }

    private func createRefund(_ form: StripeForm, idempotencyKey: String?) throws(StripeError) -> (SimulatorJSON, StripeEvent) {
        guard let intentID = form["payment_intent"], !intentID.isEmpty else { throw .missing("payment_intent") }
        guard var intent = intents[intentID] else { throw .noSuch("payment_intent", intentID, param: "payment_intent") }
        guard intent.status == .succeeded, let chargeID = intent.chargeID else {
            throw StripeError(
                status: 400, message: "This SimulatedPaymentIntent does not have a successful charge to refund.", param: "payment_intent")
        }
        if let refusal = disputes.refundRefusal(for: intent.id) { throw refusal }
        guard intent.refundable > 0 else {
            throw StripeError(status: 400, code: "charge_already_refunded", message: "Charge \(chargeID) has already been refunded.")
        }
        let amount = try Self.amount(form, minimum: 1) ?? intent.refundable
        guard amount <= intent.refundable else {
            throw StripeError(
                status: 400, code: "amount_too_large",
                message: "SimulatedRefund amount (\(amount)) is greater than unrefunded amount on charge (\(intent.refundable))", param: "amount")
        }
        let reason = form["reason"].flatMap { $0.isEmpty ? nil : $0 }
        if let reason, !["duplicate", "fraudulent", "requested_by_customer"].contains(reason) {
            throw StripeError(
                status: 400, message: "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer", param: "reason")
        }
        let metadata = try Self.metadata(form)
        let time = now()
        let refund = SimulatedRefund(
            id: StripeIdentifier.make("re_"), amount: amount, currency: intent.currency, paymentIntent: intent.id, charge: chargeID,
            reason: reason, metadata: metadata, created: time)
        refunds[refund.id] = refund
        refundOrder.append(refund.id)
        intent.refundIDs.append(refund.id)
        intent.amountRefunded += amount
        intents[intent.id] = intent
        let event = StripeEvent(
            type: "charge.refunded", object: chargeJSON(intent), created: time, requestID: StripeIdentifier.make("req_", length: 14),
            idempotencyKey: idempotencyKey)
        return (refund.json, event)
    }

    /// The intent's charge as Stripe renders it in `charge.refunded`, refunds newest first.
    private func chargeJSON(_ intent: SimulatedPaymentIntent) -> SimulatorJSON {
        let chargeID = intent.chargeID ?? ""
        let refundList = intent.refundIDs.reversed().compactMap { refunds[$0]?.json }
        return .object([
            ("id", .string(chargeID)),
            ("object", .string("charge")),
            ("amount", .int(intent.amountReceived)),
            ("amount_refunded", .int(intent.amountRefunded)),
            ("currency", .string(intent.currency)),
            ("payment_intent", .string(intent.id)),
            ("metadata", .sortedStrings(intent.metadata)),
            ("refunded", .bool(intent.amountReceived > 0 && intent.amountRefunded >= intent.amountReceived)),
            (
                "refunds",
                .object([
                    ("object", .string("list")),
                    ("data", .array(refundList)),
                    ("has_more", .bool(false)),
                    ("total_count", .int(refundList.count)),
                    ("url", .string("/v1/charges/\(chargeID)/refunds")),
                ])
            ),
            ("status", .string("succeeded")),
            ("paid", .bool(true)),
            ("captured", .bool(true)),
            ("created", .int(chargeCreated[chargeID] ?? intent.created)),
            ("livemode", .bool(false)),
        ])
    }

    /// The currencies with three decimals that Stripe takes (docs.stripe.com/currencies).
    private static let threeDecimalCurrencies: Set<String> = ["bhd", "jod", "kwd", "omr", "tnd"]

    /// The form's `amount`, `nil` when absent.
    private static func amount(_ form: StripeForm, minimum: Int) throws(StripeError) -> Int? {
        guard let text = form["amount"], !text.isEmpty else { return nil }
        guard let amount = Int(text) else { throw .invalidInteger("amount", text) }
        guard amount >= minimum else {
            throw StripeError(status: 400, code: "amount_too_small", message: "Amount must be at least \(minimum).", param: "amount")
        }
        return amount
    }

    /// The form's required `amount`, 1-99999999.
    private static func requiredAmount(_ form: StripeForm) throws(StripeError) -> Int {
        guard let amount = try amount(form, minimum: 1) else { throw .missing("amount") }
        guard amount <= 99_999_999 else {
            throw StripeError(status: 400, code: "amount_too_large", message: "Amount must be no more than 99999999.", param: "amount")
        }
        return amount
    }

    /// The form's required `currency`, three letters, lower-cased as Stripe returns it.
    private static func currency(_ form: StripeForm) throws(StripeError) -> String {
        guard let currency = form["currency"], !currency.isEmpty else { throw .missing("currency") }
        guard currency.utf8.count == 3, currency.unicodeScalars.allSatisfy({ $0.isASCII && $0.properties.isAlphabetic }) else {
            throw StripeError(status: 400, message: "Invalid currency: \(currency). Use a three-letter ISO currency code.", param: "currency")
        }
        return currency.lowercased()
    }

    /// `metadata[...]` within Stripe's limits (50 keys, keys up to 40 characters, values up to 500);
    /// an empty value means the key is not set.
    private static func metadata(_ form: StripeForm) throws(StripeError) -> [String: String] {
        let metadata = form.dictionary("metadata").filter { !$0.value.isEmpty }
        guard metadata.count <= 50 else {
            throw StripeError(status: 400, message: "Metadata can have at most 50 keys.", param: "metadata")
        }
        for (key, value) in metadata where key.count > 40 || value.count > 500 {
            throw StripeError(
                status: 400, message: "Metadata keys can be at most 40 characters and values at most 500.", param: "metadata[\(key)]")
        }
        return metadata
    }

    // MARK: Bookkeeping

    private func consumeFault(_ operation: Fault.Operation) -> StripeError? {
        guard var fault = faults[operation] else { return nil }
        if let remaining = fault.remaining {
            if remaining <= 1 {
                faults[operation] = nil
            } else {
                fault.remaining = remaining - 1
                faults[operation] = fault
            }
        }
        return fault.error
    }

    private func record(_ event: StripeEvent) {
        eventIndex[event.id] = events.count
        events.append(EventRecord(event: event, delivery: nil))
    }

    private func answer(_ call: Call, error: StripeError) -> Answer {
        answer(call, status: error.status, body: error.json.bytes)
    }

    private func answer(
        _ call: Call, status: Int, body: [UInt8], replayed: Bool = false, fault: Bool = false, event: StripeEvent? = nil
    ) -> Answer {
        requests.append(
            RequestLogEntry(
                method: call.method, path: call.path, idempotencyKey: call.idempotencyKey, status: status, replayed: replayed, fault: fault))
        return Answer(status: status, body: body, replayed: replayed, event: event)
    }
}
