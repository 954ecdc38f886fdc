import Foundation

/// `refund.succeeded`: the provider refunded (part of) a payment. ``amount`` is **this** refund's amount
/// (Stripe: the newest refund of `charge.refunded`), never the cumulative total refunded.
public struct RefundSucceeded: DomainEvent, Hashable {
    /// `refund.succeeded`.
    public static var eventType: String { "refund.succeeded" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The platform's refund id when the provider echoed it back, otherwise `nil`.
    public let refundID: RefundID?
    /// The booking concerned (from `metadata.booking_id`), `nil` when unknown.
    public let bookingID: BookingID?
    /// The provider's reference of the refunded payment (Stripe `payment_intent`).
    public let providerRef: String
    /// The amount refunded (wire: `amount` + `currency`).
    public let amount: Money
    /// The provider's id of the refund itself (Stripe `re_...`), when known (wire: `provider_refund_ref`).
    public let providerRefundRef: String?

    /// Creates the event.
    public init(refundID: RefundID?, bookingID: BookingID?, providerRef: String, amount: Money, providerRefundRef: String? = nil) {
        self.refundID = refundID
        self.bookingID = bookingID
        self.providerRef = providerRef
        self.amount = amount
        self.providerRefundRef = providerRefundRef
    }

    /// The booking id, or the provider reference when no booking is known.
    public var aggregateID: String { bookingID?.description ?? providerRef }

    private enum CodingKeys: String, CodingKey {
        case refundID = "refund_id"
        case bookingID = "booking_id"
        case providerRef = "provider_ref"
        case amount
        case currency
        case providerRefundRef = "provider_refund_ref"
    }

    /// Decodes the wire form; `refund_id`, `booking_id` and `provider_refund_ref` may be `null` or absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.refundID = try container.decodeIfPresent(RefundID.self, forKey: .refundID)
        self.bookingID = try container.decodeIfPresent(BookingID.self, forKey: .bookingID)
        self.providerRef = try container.decode(String.self, forKey: .providerRef)
        self.amount = try container.decodeMoney(amountKey: .amount, currencyKey: .currency)
        self.providerRefundRef = try container.decodeIfPresent(String.self, forKey: .providerRefundRef)
    }

    /// Encodes the wire form; absent optionals are explicit `null`s.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeNullable(refundID, forKey: .refundID)
        try container.encodeNullable(bookingID, forKey: .bookingID)
        try container.encode(providerRef, forKey: .providerRef)
        try container.encodeMoney(amount, amountKey: .amount, currencyKey: .currency)
        try container.encodeNullable(providerRefundRef, forKey: .providerRefundRef)
    }
}
