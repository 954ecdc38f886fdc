/// One `/v1` call as the simulator answered it (`GET /simulator/requests`).
struct RequestLogEntry: Sendable {
    let method: String
    let path: String
    let idempotencyKey: String?
    let status: Int
    /// Answered from the idempotency record without executing.
    let replayed: Bool
    /// Failed by an injected fault.
    let fault: Bool

    var json: SimulatorJSON {
        .object([
            ("method", .string(method)),
            ("path", .string(path)),
            ("idempotency_key", .string(idempotencyKey)),
            ("status", .int(status)),
            ("replayed", .bool(replayed)),
            ("fault", .bool(fault)),
        ])
    }
}

/// The first execution of an idempotency key: what was asked and the exact answer.
struct IdempotencyRecord: Sendable {
    let method: String
    let path: String
    let parameters: [String]
    let status: Int
    let body: [UInt8]
}
