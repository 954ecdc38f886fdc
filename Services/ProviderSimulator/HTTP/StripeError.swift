/// An error in Stripe's shape, `{"error":{"type","code","message","param"}}` (absent members omitted),
/// with the HTTP status Stripe would answer.
struct StripeError: Error, Sendable {
    let status: Int
    let type: String
    let code: String?
    let message: String
    let param: String?

    init(status: Int, type: String = "invalid_request_error", code: String? = nil, message: String, param: String? = nil) {
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.param = param
    }

    var json: SimulatorJSON {
        var members: [(String, SimulatorJSON)] = [("type", .string(type))]
        if let code { members.append(("code", .string(code))) }
        members.append(("message", .string(message)))
        if let param { members.append(("param", .string(param))) }
        return .object([("error", .object(members))])
    }

    static let invalidAPIKey = StripeError(status: 401, code: "api_key_invalid", message: "Invalid API Key provided")

    static func missing(_ param: String) -> StripeError {
        StripeError(status: 400, code: "parameter_missing", message: "Missing required param: \(param).", param: param)
    }

    static func invalidInteger(_ param: String, _ value: String) -> StripeError {
        StripeError(status: 400, code: "parameter_invalid_integer", message: "Invalid integer: \(value)", param: param)
    }

    static func noSuch(_ object: String, _ id: String, param: String? = nil) -> StripeError {
        StripeError(status: 404, code: "resource_missing", message: "No such \(object): '\(id)'", param: param)
    }

    static func malformedBody(_ reason: String) -> StripeError {
        StripeError(status: 400, message: "Invalid request body: \(reason).")
    }
}

/// An error of the local control API, in the platform's shape `{"error":{"code","message"}}`.
struct ControlError: Error, Sendable {
    let status: Int
    let code: String
    let message: String

    var json: SimulatorJSON {
        .object([("error", .object([("code", .string(code)), ("message", .string(message))]))])
    }

    static func badRequest(_ message: String) -> ControlError {
        ControlError(status: 400, code: "invalid_request", message: message)
    }

    static func unknownIntent(_ id: String) -> ControlError {
        ControlError(status: 404, code: "not_found", message: "No such payment_intent: '\(id)'")
    }
}
