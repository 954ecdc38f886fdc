import Foundation

/// `booking.cancelled`: the booking is cancelled and its seats released.
///
/// `refund_due` is the amount the saga will refund (0 when none); like every amount on the wire
/// it is integer minor units with a `currency` field beside it.
public struct BookingCancelled: DomainEvent, Hashable {
    /// `booking.cancelled`.
    public static var eventType: String { "booking.cancelled" }
    /// Version 1.
    public static var version: Int { 1 }

    /// The cancelled booking.
    public let bookingID: BookingID
    /// Why it was cancelled.
    public let reason: CancellationReason
    /// The amount to refund; zero when no refund is due (wire: `refund_due` + `currency`).
    public let refundDue: Money

    /// Creates the event.
    public init(bookingID: BookingID, reason: CancellationReason, refundDue: Money) {
        self.bookingID = bookingID
        self.reason = reason
        self.refundDue = refundDue
    }

    /// The booking id.
    public var aggregateID: String { bookingID.description }

    private enum CodingKeys: String, CodingKey {
        case bookingID = "booking_id"
        case reason
        case refundDue = "refund_due"
        case currency
    }

    /// Decodes the wire form; an unknown `reason` throws.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.bookingID = try container.decode(BookingID.self, forKey: .bookingID)
        self.reason = try container.decode(CancellationReason.self, forKey: .reason)
        self.refundDue = try container.decodeMoney(amountKey: .refundDue, currencyKey: .currency)
    }

    /// Encodes the wire form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(bookingID, forKey: .bookingID)
        try container.encode(reason, forKey: .reason)
        try container.encodeMoney(refundDue, amountKey: .refundDue, currencyKey: .currency)
    }
}
