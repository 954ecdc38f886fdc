/// An injected failure: the next `remaining` creations of one operation fail before executing
/// (`nil` = until cleared). Faulted calls are never recorded for idempotency.
struct Fault: Sendable {
    /// The API creation a fault applies to.
    enum Operation: String, Sendable, Codable, CaseIterable {
        /// `POST /v1/payment_intents`.
        case paymentIntents = "payment_intents"
        /// `POST /v1/refunds`.
        case refunds
        /// `POST /v1/transfers`.
        case transfers
    }

    enum Mode: String, Sendable, Codable {
        /// 500 `api_error`: the call may be retried.
        case transient
        /// 400 `invalid_request_error`, code `payment_intent_refused`, `refund_refused` or
        /// `transfer_refused`.
        case refuse
        /// 429 `rate_limit` with `Retry-After: 1`, as Stripe answers past its request rate.
        case rateLimited = "rate_limited"
    }

    let operation: Operation
    let mode: Mode
    var remaining: Int?

    /// The response a faulted call gets.
    var error: StripeError {
        switch (mode, operation) {
        case (.transient, _):
            StripeError(status: 500, type: "api_error", message: "An unexpected error occurred (simulated transient fault).")
        case (.rateLimited, _):
            StripeError(
                status: 429, type: "invalid_request_error", code: "rate_limit",
                message: "Too many requests hit the API too quickly (simulated fault).")
        case (.refuse, .paymentIntents):
            StripeError(status: 400, code: "payment_intent_refused", message: "The payment intent was refused (simulated fault).")
        case (.refuse, .refunds):
            StripeError(status: 400, code: "refund_refused", message: "The refund was refused (simulated fault).")
        case (.refuse, .transfers):
            StripeError(status: 400, code: "transfer_refused", message: "The destination account cannot receive transfers (simulated fault).")
        }
    }

    var json: SimulatorJSON {
        .object([("operation", .string(operation.rawValue)), ("mode", .string(mode.rawValue)), ("count", .int(remaining))])
    }
}
