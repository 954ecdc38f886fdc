import Foundation

/// What every `payout.*` event says about its payout: who is paid how much, by which run, for which
/// ledger entries. The events add what happened to it (`provider_ref` when paid, `error` when failed).
public struct PayoutDetails: Codable, Sendable, Hashable {
    /// The payout.
    public let payoutID: UUID
    /// The run that created it.
    public let runID: UUID
    /// The host paid.
    public let hostID: HostID
    /// The amount transferred (wire: `amount` + `currency`); always positive.
    public let amount: Money
    /// The ledger entries the payout covers; their amounts add up to ``amount``.
    public let items: [PayoutItem]

    /// Creates the details.
    public init(payoutID: UUID, runID: UUID, hostID: HostID, amount: Money, items: [PayoutItem]) {
        self.payoutID = payoutID
        self.runID = runID
        self.hostID = hostID
        self.amount = amount
        self.items = items
    }

    enum CodingKeys: String, CodingKey {
        case payoutID = "payout_id"
        case runID = "run_id"
        case hostID = "host_id"
        case amount
        case currency
        case items
    }

    /// Decodes the wire form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        payoutID = try container.decode(UUID.self, forKey: .payoutID)
        runID = try container.decode(UUID.self, forKey: .runID)
        hostID = try container.decode(HostID.self, forKey: .hostID)
        amount = try container.decodeMoney(amountKey: .amount, currencyKey: .currency)
        items = try container.decode([PayoutItem].self, forKey: .items)
    }

    /// Encodes the wire form: lower-case ids, money as `amount` + `currency`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(payoutID.uuidString.lowercased(), forKey: .payoutID)
        try container.encode(runID.uuidString.lowercased(), forKey: .runID)
        try container.encode(hostID, forKey: .hostID)
        try container.encodeMoney(amount, amountKey: .amount, currencyKey: .currency)
        try container.encode(items, forKey: .items)
    }
}

/// One ledger entry a payout covers.
public struct PayoutItem: Codable, Sendable, Hashable {
    /// The kind of ledger entry.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A confirmed booking's amount (credit).
        case revenue
        /// The platform's fee on it (debit).
        case fee
        /// A refund of the booking (debit).
        case refund
        /// The fee's share of a refund, given back (credit).
        case feeReversal = "fee_reversal"
    }

    /// The ledger entry.
    public let entryID: Int64
    /// The booking it belongs to.
    public let bookingID: BookingID
    public let kind: Kind
    /// Signed, in minor units of the payout's currency: credits positive, debits negative.
    public let amount: Int64

    /// Creates an item.
    public init(entryID: Int64, bookingID: BookingID, kind: Kind, amount: Int64) {
        self.entryID = entryID
        self.bookingID = bookingID
        self.kind = kind
        self.amount = amount
    }

    private enum CodingKeys: String, CodingKey {
        case entryID = "entry_id"
        case bookingID = "booking_id"
        case kind
        case amount
    }
}
