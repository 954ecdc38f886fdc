import Foundation

/// The booking's customer-visible `status` (DESIGN.md saga table, second column).
public enum BookingStatus: String, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Created from a hold; waiting for the payment.
    case pendingPayment = "pending_payment"
    /// Paid; the seats are sold.
    case confirmed
    /// Cancelled after payment; a refund is being made.
    case refundPending = "refund_pending"
    /// Cancelled and refunded.
    case refunded
    /// Cancelled without refund (payment failed, cancelled before payment, or outside the refund policy).
    case cancelled
    /// Not paid in time.
    case expired

    /// The wire value, e.g. `pending_payment`.
    public var description: String { rawValue }
}
