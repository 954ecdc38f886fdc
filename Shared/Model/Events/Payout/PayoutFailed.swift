import Foundation

/// `payout.failed`: the provider refused the transfer for good; the payout's entries are payable
/// again and the next run pays them.
public struct PayoutFailed: DomainEvent, Hashable {
    /// `payout.failed`.
    public static var eventType: String { "payout.failed" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The payout (wire: its fields at the top level of `data`).
    public let payout: PayoutDetails
    /// Why, for people: the provider's answer.
    public let error: String

    /// Creates the event.
    public init(payout: PayoutDetails, error: String) {
        self.payout = payout
        self.error = error
    }

    /// The payout id.
    public var aggregateID: String { payout.payoutID.lowercasedString }

    private enum CodingKeys: String, CodingKey {
        case error
    }

    /// Decodes the wire form.
    public init(from decoder: any Decoder) throws {
        payout = try PayoutDetails(from: decoder)
        error = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .error)
    }

    /// Encodes the wire form.
    public func encode(to encoder: any Encoder) throws {
        try payout.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(error, forKey: .error)
    }
}
