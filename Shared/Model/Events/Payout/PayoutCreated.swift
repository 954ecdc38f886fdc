import Foundation

/// `payout.created`: a run reconciled and will transfer this payout to the host.
public struct PayoutCreated: DomainEvent, Hashable {
    /// `payout.created`.
    public static var eventType: String { "payout.created" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The payout (wire: its fields at the top level of `data`).
    public let payout: PayoutDetails

    /// Creates the event.
    public init(payout: PayoutDetails) {
        self.payout = payout
    }

    /// The payout id.
    public var aggregateID: String { payout.payoutID.lowercasedString }

    /// Decodes the wire form.
    public init(from decoder: any Decoder) throws {
        payout = try PayoutDetails(from: decoder)
    }

    /// Encodes the wire form.
    public func encode(to encoder: any Encoder) throws {
        try payout.encode(to: encoder)
    }
}
