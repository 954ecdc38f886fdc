import Foundation

/// Why a refund was requested (`refund.requested` `reason`). Extensible: any string decodes, so
/// a producer may add a reason without breaking older consumers; the known ones are constants.
public struct RefundReason: OpenStringValue {
    /// The reason as written on the wire (snake_case).
    public let rawValue: String

    /// Wraps a reason string.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// A confirmed booking was cancelled by its customer within the refund policy.
    public static let customerCancellation: RefundReason = "customer_cancellation"
    /// A confirmed booking was cancelled by an administrator.
    public static let adminCancellation: RefundReason = "admin_cancellation"
    /// An operator refunded part of a confirmed booking (a goodwill refund); the booking stays confirmed.
    public static let partialRefund: RefundReason = "partial_refund"
    /// The booking's event was cancelled (always a full refund).
    public static let eventCancellation: RefundReason = "event_cancellation"
    /// The payment arrived for a booking already expired or cancelled.
    public static let latePayment: RefundReason = "late_payment"
    /// The payment's amount or currency did not match the booking.
    public static let amountMismatch: RefundReason = "amount_mismatch"
    /// The payment names no booking, or one that does not exist.
    public static let unknownBooking: RefundReason = "unknown_booking"
    /// A second payment arrived for a booking that was already paid.
    public static let duplicatePayment: RefundReason = "duplicate_payment"
    /// An operator's `saga resume` of a cancellation whose refund failed or stayed pending.
    public static let operatorResume: RefundReason = "operator_resume"
}
