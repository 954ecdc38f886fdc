import Foundation

/// `payout.paid`: the provider accepted the transfer.
public struct PayoutPaid: DomainEvent, Hashable {
    /// `payout.paid`.
    public static var eventType: String { "payout.paid" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The payout (wire: its fields at the top level of `data`).
    public let payout: PayoutDetails
    /// The provider's transfer reference, e.g. Stripe `tr_...`.
    public let providerRef: String

    /// Creates the event.
    public init(payout: PayoutDetails, providerRef: String) {
        self.payout = payout
        self.providerRef = providerRef
    }

    /// The payout id.
    public var aggregateID: String { payout.payoutID.lowercasedString }

    private enum CodingKeys: String, CodingKey {
        case providerRef = "provider_ref"
    }

    /// Decodes the wire form.
    public init(from decoder: any Decoder) throws {
        payout = try PayoutDetails(from: decoder)
        providerRef = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .providerRef)
    }

    /// Encodes the wire form.
    public func encode(to encoder: any Encoder) throws {
        try payout.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(providerRef, forKey: .providerRef)
    }
}
