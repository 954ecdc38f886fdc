/// A simulated transfer to a connected account (always paid at once, never reversed).
struct SimulatedTransfer: Sendable {
    let id: String
    let amount: Int
    /// Lower case, as Stripe returns it.
    let currency: String
    /// The connected account (`acct_...`).
    let destination: String
    let metadata: [String: String]
    let created: Int

    /// The API representation.
    var json: SimulatorJSON {
        .object([
            ("id", .string(id)),
            ("object", .string("transfer")),
            ("amount", .int(amount)),
            ("amount_reversed", .int(0)),
            ("currency", .string(currency)),
            ("destination", .string(destination)),
            ("metadata", .sortedStrings(metadata)),
            ("created", .int(created)),
            ("livemode", .bool(false)),
            ("reversed", .bool(false)),
        ])
    }
}
