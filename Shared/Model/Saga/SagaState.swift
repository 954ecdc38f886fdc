import Foundation

/// The state of a booking's saga (DESIGN.md saga table, first column).
public enum SagaState: String, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Waiting for `payment.succeeded` or `payment.failed`, or the deadline.
    case awaitingPayment = "awaiting_payment"
    /// Paid and confirmed.
    case confirmed
    /// A confirmed booking was cancelled with a refund due; the refund is about to be requested.
    case cancelRequested = "cancel_requested"
    /// `refund.requested` was emitted; waiting for `refund.succeeded` or `refund.failed`.
    case refundPending = "refund_pending"
    /// The refund succeeded. Terminal.
    case refunded
    /// Cancelled without refund. Terminal.
    case cancelled
    /// Not paid by the deadline. Terminal.
    case expired
    /// The refund failed permanently (or stayed pending too long); waits for an operator's
    /// `saga resume`.
    case compensationFailed = "compensation_failed"

    /// The wire value, e.g. `awaiting_payment`.
    public var description: String { rawValue }

    /// Whether no transition leaves this state: `refunded`, `cancelled`, `expired`.
    ///
    /// A payment that arrives for a terminal saga is compensated with a refund while the state
    /// stays unchanged; that is not a transition.
    public var isTerminal: Bool {
        switch self {
        case .refunded, .cancelled, .expired: true
        case .awaitingPayment, .confirmed, .cancelRequested, .refundPending, .compensationFailed: false
        }
    }

    /// The booking status this state implies, or `nil` for `compensation_failed`, which leaves the
    /// booking's status unchanged (in practice `refund_pending`, the status of every state that
    /// can fail compensation).
    public var bookingStatus: BookingStatus? {
        switch self {
        case .awaitingPayment: .pendingPayment
        case .confirmed: .confirmed
        case .cancelRequested, .refundPending: .refundPending
        case .refunded: .refunded
        case .cancelled: .cancelled
        case .expired: .expired
        case .compensationFailed: nil
        }
    }
}
