import Foundation

/// What every `payout.*` event says about its payout: who is paid how much, by which run, and a
/// summary of the ledger entries it covers (the entries themselves, one per booking and kind, can be
/// tens of thousands for a large host: `GET /v1/payouts/{id}` lists them). The events add what
/// happened to it (`provider_ref` when paid, `error` when failed).
public struct PayoutDetails: Codable, Sendable, Hashable {
    /// The payout.
    public let payoutID: UUID
    /// The run that created it.
    public let runID: UUID
    /// The host paid.
    public let hostID: HostID
    /// The amount transferred (wire: `amount` + `currency`); always positive.
    public let amount: Money
    /// The ledger entries the payout covers, summed by kind; the sums add up to ``amount``.
    public let items: PayoutItemSummary

    /// Creates the details.
    public init(payoutID: UUID, runID: UUID, hostID: HostID, amount: Money, items: PayoutItemSummary) {
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
        items = try container.decode(PayoutItemSummary.self, forKey: .items)
    }

    /// Encodes the wire form: lower-case ids, money as `amount` + `currency`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(payoutID.lowercasedString, forKey: .payoutID)
        try container.encode(runID.lowercasedString, forKey: .runID)
        try container.encode(hostID, forKey: .hostID)
        try container.encodeMoney(amount, amountKey: .amount, currencyKey: .currency)
        try container.encode(items, forKey: .items)
    }
}

/// The ledger entries a payout covers, counted and summed by kind (signed minor units: credits
/// positive, debits negative; the six sums add up to the payout's amount).
public struct PayoutItemSummary: Codable, Sendable, Hashable {
    /// How many entries.
    public let count: Int
    /// How many bookings have revenue among them.
    public let bookings: Int
    public let revenue: Int64
    public let fees: Int64
    public let refunds: Int64
    public let feeReversals: Int64
    /// Debits of lost disputes (wire: `dispute`; absent in events written before disputes: 0).
    public let disputes: Int64
    /// The rounding entries: a rest below the provider's step an earlier payout carried (positive),
    /// less the rest this payout holds back (negative). Absent in events written before rounding: 0.
    public let rounding: Int64

    /// Creates a summary.
    public init(
        count: Int, bookings: Int, revenue: Int64, fees: Int64, refunds: Int64, feeReversals: Int64, disputes: Int64 = 0, rounding: Int64 = 0
    ) {
        self.count = count
        self.bookings = bookings
        self.revenue = revenue
        self.fees = fees
        self.refunds = refunds
        self.feeReversals = feeReversals
        self.disputes = disputes
        self.rounding = rounding
    }

    /// What the entries add up to.
    public var total: Int64 { revenue + fees + refunds + feeReversals + disputes + rounding }

    private enum CodingKeys: String, CodingKey {
        case count, bookings, revenue
        case fees = "fee"
        case refunds = "refund"
        case feeReversals = "fee_reversal"
        case disputes = "dispute"
        case rounding
    }

    /// Decodes the wire form; `dispute` and `rounding` may be absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        count = try container.decode(Int.self, forKey: .count)
        bookings = try container.decode(Int.self, forKey: .bookings)
        revenue = try container.decode(Int64.self, forKey: .revenue)
        fees = try container.decode(Int64.self, forKey: .fees)
        refunds = try container.decode(Int64.self, forKey: .refunds)
        feeReversals = try container.decode(Int64.self, forKey: .feeReversals)
        disputes = try container.decodeIfPresent(Int64.self, forKey: .disputes) ?? 0
        rounding = try container.decodeIfPresent(Int64.self, forKey: .rounding) ?? 0
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
        /// A lost dispute's amount, taken back from the host (debit).
        case dispute
        /// The rest of a balance below the provider's smallest transfer, held back by this payout (debit).
        case rounding
        /// A rest an earlier payout held back, paid now (credit).
        case roundingCarried = "rounding_carried"
    }

    /// The ledger entry.
    public let entryID: Int64
    /// The booking it belongs to; nil for the rounding kinds (wire: `null`).
    public let bookingID: BookingID?
    public let kind: Kind
    /// Signed, in minor units of the payout's currency: credits positive, debits negative.
    public let amount: Int64

    /// Creates an item.
    public init(entryID: Int64, bookingID: BookingID?, kind: Kind, amount: Int64) {
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

    /// Encodes the wire form: `booking_id` is `null` for the rounding kinds, not absent.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(entryID, forKey: .entryID)
        try container.encode(bookingID, forKey: .bookingID)
        try container.encode(kind, forKey: .kind)
        try container.encode(amount, forKey: .amount)
    }
}
