import Foundation

/// `refund.requested`: the saga asks the payments service's provider worker to refund a payment
/// (a cancellation with refund due, or compensation for a late, mismatched or unknown payment).
public struct RefundRequested: DomainEvent, Hashable {
    /// `refund.requested`.
    public static var eventType: String { "refund.requested" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The platform's id for this refund.
    public let refundID: RefundID
    /// The booking concerned, `nil` when the payment named no known booking.
    public let bookingID: BookingID?
    /// The provider's reference of the payment to refund.
    public let providerRef: String
    /// The amount to refund (wire: `amount` + `currency`).
    public let amount: Money
    /// Why the refund is requested.
    public let reason: RefundReason
    /// The key sent to the provider so a retried request never refunds twice.
    public let idempotencyKey: String
    /// Whether the provider may already hold a refund of this payment (an operator's `saga resume`
    /// after a refusal or a refund that stayed pending): the worker asks the provider for existing
    /// refunds first and requests a new one only when none succeeded or is pending. Wire
    /// `lookup_existing`; absent means `false`.
    public let lookupExisting: Bool

    /// Creates the event.
    public init(
        refundID: RefundID, bookingID: BookingID?, providerRef: String, amount: Money,
        reason: RefundReason, idempotencyKey: String, lookupExisting: Bool = false
    ) {
        self.refundID = refundID
        self.bookingID = bookingID
        self.providerRef = providerRef
        self.amount = amount
        self.reason = reason
        self.idempotencyKey = idempotencyKey
        self.lookupExisting = lookupExisting
    }

    /// The booking id, or the provider reference when no booking is known.
    public var aggregateID: String { bookingID?.description ?? providerRef }

    private enum CodingKeys: String, CodingKey {
        case refundID = "refund_id"
        case bookingID = "booking_id"
        case providerRef = "provider_ref"
        case amount
        case currency
        case reason
        case idempotencyKey = "idempotency_key"
        case lookupExisting = "lookup_existing"
    }

    /// Decodes the wire form; `booking_id` may be `null` or absent, `lookup_existing` absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.refundID = try container.decode(RefundID.self, forKey: .refundID)
        self.bookingID = try container.decodeIfPresent(BookingID.self, forKey: .bookingID)
        self.providerRef = try container.decode(String.self, forKey: .providerRef)
        self.amount = try container.decodeMoney(amountKey: .amount, currencyKey: .currency)
        self.reason = try container.decode(RefundReason.self, forKey: .reason)
        self.idempotencyKey = try container.decode(String.self, forKey: .idempotencyKey)
        self.lookupExisting = try container.decodeIfPresent(Bool.self, forKey: .lookupExisting) ?? false
    }

    /// Encodes the wire form; a missing booking id is an explicit `null`; `lookup_existing` only when set.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(refundID, forKey: .refundID)
        try container.encodeNullable(bookingID, forKey: .bookingID)
        try container.encode(providerRef, forKey: .providerRef)
        try container.encodeMoney(amount, amountKey: .amount, currencyKey: .currency)
        try container.encode(reason, forKey: .reason)
        try container.encode(idempotencyKey, forKey: .idempotencyKey)
        if lookupExisting { try container.encode(lookupExisting, forKey: .lookupExisting) }
    }
}
