import Foundation

/// `payment.failed`: the provider (or an internal payment service) reports a failed payment.
///
/// ``isFinal`` tells whether the payment can still succeed: Stripe's `payment_intent.payment_failed`
/// is not final (the customer may retry the same intent), `payment_intent.canceled` is.
public struct PaymentFailed: DomainEvent, Hashable {
    /// `payment.failed`.
    public static var eventType: String { "payment.failed" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The provider's event id (deduplicated per provider).
    public let paymentEventID: PaymentEventID
    /// The payment provider, e.g. `stripe`.
    public let provider: String
    /// The provider's reference of the payment (e.g. Stripe `pi_...`).
    public let providerRef: String
    /// The booking the payment names, `nil` when it names none (or not a valid booking id).
    public let bookingID: BookingID?
    /// The amount that was attempted (wire: `amount` + `currency`).
    public let amount: Money
    /// When the provider created the event.
    public let providerCreatedAt: Date
    /// When the platform received it.
    public let receivedAt: Date
    /// The provider's failure reason (e.g. Stripe `last_payment_error.code`), `nil` when none given.
    public let reason: String?
    /// True when the payment can no longer succeed (wire: `final`; absent reads as true, the meaning of
    /// every `payment.failed` written before the field existed).
    public let isFinal: Bool

    /// Creates the event.
    public init(
        paymentEventID: PaymentEventID, provider: String, providerRef: String, bookingID: BookingID?,
        amount: Money, providerCreatedAt: Date, receivedAt: Date, reason: String?, isFinal: Bool
    ) {
        self.paymentEventID = paymentEventID
        self.provider = provider
        self.providerRef = providerRef
        self.bookingID = bookingID
        self.amount = amount
        self.providerCreatedAt = providerCreatedAt
        self.receivedAt = receivedAt
        self.reason = reason
        self.isFinal = isFinal
    }

    /// The booking id, or the provider reference when no booking is named.
    public var aggregateID: String { bookingID?.description ?? providerRef }

    private enum CodingKeys: String, CodingKey {
        case paymentEventID = "payment_event_id"
        case provider
        case providerRef = "provider_ref"
        case bookingID = "booking_id"
        case amount
        case currency
        case providerCreatedAt = "provider_created_at"
        case receivedAt = "received_at"
        case reason
        case isFinal = "final"
    }

    /// Decodes the wire form; `booking_id` and `reason` may be `null` or absent, `final` absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.paymentEventID = try container.decode(PaymentEventID.self, forKey: .paymentEventID)
        self.provider = try container.decode(String.self, forKey: .provider)
        self.providerRef = try container.decode(String.self, forKey: .providerRef)
        self.bookingID = try container.decodeIfPresent(BookingID.self, forKey: .bookingID)
        self.amount = try container.decodeMoney(amountKey: .amount, currencyKey: .currency)
        self.providerCreatedAt = try container.decodeTimestamp(forKey: .providerCreatedAt)
        self.receivedAt = try container.decodeTimestamp(forKey: .receivedAt)
        self.reason = try container.decodeIfPresent(String.self, forKey: .reason)
        self.isFinal = try container.decodeIfPresent(Bool.self, forKey: .isFinal) ?? true
    }

    /// Encodes the wire form; absent optionals are explicit `null`s.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(paymentEventID, forKey: .paymentEventID)
        try container.encode(provider, forKey: .provider)
        try container.encode(providerRef, forKey: .providerRef)
        try container.encodeNullable(bookingID, forKey: .bookingID)
        try container.encodeMoney(amount, amountKey: .amount, currencyKey: .currency)
        try container.encodeTimestamp(providerCreatedAt, forKey: .providerCreatedAt)
        try container.encodeTimestamp(receivedAt, forKey: .receivedAt)
        try container.encodeNullable(reason, forKey: .reason)
        try container.encode(isFinal, forKey: .isFinal)
    }
}
