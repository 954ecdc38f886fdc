import Foundation

/// `refund.failed`: the provider permanently refused a refund; the saga moves to
/// `compensation_failed` for an operator.
public struct RefundFailed: DomainEvent, Hashable {
    /// `refund.failed`.
    public static var eventType: String { "refund.failed" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The platform's refund id when known, otherwise `nil`.
    public let refundID: RefundID?
    /// The booking concerned, `nil` when unknown.
    public let bookingID: BookingID?
    /// The provider's reference of the payment that could not be refunded.
    public let providerRef: String
    /// The amount that could not be refunded (wire: `amount` + `currency`).
    public let amount: Money
    /// The provider's error, `nil` when none was given.
    public let error: String?

    /// Creates the event.
    public init(refundID: RefundID?, bookingID: BookingID?, providerRef: String, amount: Money, error: String?) {
        self.refundID = refundID
        self.bookingID = bookingID
        self.providerRef = providerRef
        self.amount = amount
        self.error = error
    }

    /// The booking id, or the provider reference when no booking is known.
    public var aggregateID: String { bookingID?.description ?? providerRef }

    private enum CodingKeys: String, CodingKey {
        case refundID = "refund_id"
        case bookingID = "booking_id"
        case providerRef = "provider_ref"
        case amount
        case currency
        case error
    }

    /// Decodes the wire form; `refund_id`, `booking_id` and `error` may be `null` or absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.refundID = try container.decodeIfPresent(RefundID.self, forKey: .refundID)
        self.bookingID = try container.decodeIfPresent(BookingID.self, forKey: .bookingID)
        self.providerRef = try container.decode(String.self, forKey: .providerRef)
        self.amount = try container.decodeMoney(amountKey: .amount, currencyKey: .currency)
        self.error = try container.decodeIfPresent(String.self, forKey: .error)
    }

    /// Encodes the wire form; absent optionals are explicit `null`s.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeNullable(refundID, forKey: .refundID)
        try container.encodeNullable(bookingID, forKey: .bookingID)
        try container.encode(providerRef, forKey: .providerRef)
        try container.encodeMoney(amount, amountKey: .amount, currencyKey: .currency)
        try container.encodeNullable(error, forKey: .error)
    }
}
