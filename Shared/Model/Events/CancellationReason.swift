import Foundation

/// Why a booking was cancelled (`booking.cancelled` `reason`).
public enum CancellationReason: String, Hashable, Sendable, Codable, CaseIterable {
    /// The payment provider reported the payment failed while the booking awaited payment.
    case paymentFailed = "payment_failed"
    /// The customer cancelled.
    case customer
    /// An administrator cancelled.
    case admin
    /// The host or an operator cancelled the whole event: a confirmed booking is refunded in full
    /// whatever the refund policy's cut-off says.
    case eventCancelled = "event_cancelled"
}
