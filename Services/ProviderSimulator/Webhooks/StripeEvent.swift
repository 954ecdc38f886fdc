/// A Stripe event as delivered: its id, type and the exact bytes that are signed and sent.
struct StripeEvent: Sendable {
    /// The API version events are rendered for.
    static let apiVersion = "2024-06-20"

    let id: String
    let type: String
    let created: Int
    let payload: [UInt8]

    /// Renders `{"id","object":"event","api_version","created","type","livemode","pending_webhooks",
    /// "request","data":{"object"}}`.
    init(type: String, object: SimulatorJSON, created: Int, requestID: String? = nil, idempotencyKey: String? = nil) {
        self.id = StripeIdentifier.make("evt_")
        self.type = type
        self.created = created
        self.payload =
            SimulatorJSON.object([
                ("id", .string(id)),
                ("object", .string("event")),
                ("api_version", .string(Self.apiVersion)),
                ("created", .int(created)),
                ("type", .string(type)),
                ("livemode", .bool(false)),
                ("pending_webhooks", .int(1)),
                ("request", .object([("id", .string(requestID)), ("idempotency_key", .string(idempotencyKey))])),
                ("data", .object([("object", object)])),
            ]).bytes
    }
}

/// The outcome of delivering one event: the last HTTP status (`nil` after a connection error), how
/// many attempts were made, and whether one got a 2xx.
struct WebhookDelivery: Sendable, Equatable {
    let status: Int?
    let attempts: Int
    let delivered: Bool
    /// Not sent on purpose (`POST /simulator/webhook-drops`).
    var dropped = false

    var json: SimulatorJSON {
        .object([("status", .int(status)), ("attempts", .int(attempts)), ("delivered", .bool(delivered)), ("dropped", .bool(dropped))])
    }
}
