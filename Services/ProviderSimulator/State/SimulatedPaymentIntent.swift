/// A simulated PaymentIntent and its (single) charge.
struct SimulatedPaymentIntent: Sendable {
    enum Status: String, Sendable {
        case requiresPaymentMethod = "requires_payment_method"
        case succeeded
        case canceled
    }

    /// `last_payment_error` after a simulated decline.
    struct PaymentError: Sendable {
        let code: String
        let message: String

        var json: SimulatorJSON {
            .object([("type", .string("card_error")), ("code", .string(code)), ("message", .string(message))])
        }
    }

    let id: String
    let clientSecret: String
    let amount: Int
    var amountReceived = 0
    /// Lower case, as Stripe returns it.
    var currency: String
    var status = Status.requiresPaymentMethod
    let metadata: [String: String]
    let created: Int
    var lastPaymentError: PaymentError?
    /// Set when the intent is canceled (`abandoned`, `requested_by_customer`, ...).
    var cancellationReason: String?
    /// Set when the intent succeeds.
    var chargeID: String?
    /// Refund ids, oldest first.
    var refundIDs: [String] = []
    var amountRefunded = 0

    init(amount: Int, currency: String, metadata: [String: String], created: Int) {
        self.id = StripeIdentifier.make("pi_")
        self.clientSecret = "\(id)_secret_\(StripeIdentifier.make("", length: 25))"
        self.amount = amount
        self.currency = currency
        self.metadata = metadata
        self.created = created
    }

    /// What is left to refund on the charge.
    var refundable: Int { max(0, amountReceived - amountRefunded) }

    /// The API representation, in Stripe's field order.
    var json: SimulatorJSON {
        .object([
            ("id", .string(id)),
            ("object", .string("payment_intent")),
            ("amount", .int(amount)),
            ("amount_received", .int(amountReceived)),
            ("currency", .string(currency)),
            ("status", .string(status.rawValue)),
            ("client_secret", .string(clientSecret)),
            ("metadata", .sortedStrings(metadata)),
            ("created", .int(created)),
            ("livemode", .bool(false)),
            ("last_payment_error", lastPaymentError?.json ?? .null),
            ("cancellation_reason", .string(cancellationReason)),
            ("latest_charge", .string(chargeID)),
        ])
    }
}

/// A simulated refund (always `succeeded`).
struct SimulatedRefund: Sendable {
    let id: String
    let amount: Int
    let currency: String
    let paymentIntent: String
    let charge: String
    let reason: String?
    let metadata: [String: String]
    let created: Int

    var json: SimulatorJSON {
        .object([
            ("id", .string(id)),
            ("object", .string("refund")),
            ("amount", .int(amount)),
            ("currency", .string(currency)),
            ("payment_intent", .string(paymentIntent)),
            ("charge", .string(charge)),
            ("status", .string("succeeded")),
            ("reason", .string(reason)),
            ("metadata", .sortedStrings(metadata)),
            ("created", .int(created)),
        ])
    }
}
