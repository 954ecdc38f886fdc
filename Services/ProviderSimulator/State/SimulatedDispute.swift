/// A simulated dispute (chargeback) on an intent's charge, opened and closed through the control API.
///
/// Like Stripe's, it does not carry the intent's metadata: a receiver finds the payment through
/// `payment_intent` or `charge`.
struct SimulatedDispute: Sendable {
    enum Status: String, Sendable {
        /// Open: the merchant is expected to submit evidence.
        case needsResponse = "needs_response"
        /// Closed in the merchant's favour; the withdrawn funds are reinstated.
        case won
        /// Closed in the cardholder's favour; the funds stay withdrawn.
        case lost

        /// Whether the dispute has ended (`won` or `lost`).
        var isClosed: Bool { self != .needsResponse }
    }

    let id: String
    let amount: Int
    /// Lower case, as Stripe returns it (the intent's currency).
    let currency: String
    let charge: String
    let paymentIntent: String
    let reason: String
    var status = Status.needsResponse
    let created: Int

    init(amount: Int, currency: String, charge: String, paymentIntent: String, reason: String, created: Int) {
        self.id = StripeIdentifier.make("dp_")
        self.amount = amount
        self.currency = currency
        self.charge = charge
        self.paymentIntent = paymentIntent
        self.reason = reason
        self.created = created
    }

    /// The API representation, in Stripe's field order.
    var json: SimulatorJSON {
        .object([
            ("id", .string(id)),
            ("object", .string("dispute")),
            ("amount", .int(amount)),
            ("currency", .string(currency)),
            ("charge", .string(charge)),
            ("payment_intent", .string(paymentIntent)),
            ("reason", .string(reason)),
            ("status", .string(status.rawValue)),
            ("created", .int(created)),
            ("livemode", .bool(false)),
            ("metadata", .object([])),
            ("is_charge_refundable", .bool(false)),
            ("balance_transactions", .array([])),
        ])
    }
}
