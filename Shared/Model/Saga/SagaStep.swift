import Foundation

/// One entry of a booking's saga log (`GET /v1/bookings/{id}/saga`, `steps`): what happened, whether
/// it moved the booking forward or compensated, how it ended, the states around it and a detail line.
public struct SagaStep: Hashable, Sendable {
    /// The step's name on the wire.
    public enum Name: String, Hashable, Sendable, CaseIterable {
        case bookingRequested = "booking_requested"
        case bookingConfirmed = "booking_confirmed"
        case paymentIntentCreated = "payment_intent_created"
        case paymentSucceeded = "payment_succeeded"
        case paymentFailed = "payment_failed"
        case paymentAttemptFailed = "payment_attempt_failed"
        case bookingCancelled = "booking_cancelled"
        case cancelRequested = "cancel_requested"
        case refundRequested = "refund_requested"
        case refunded
        case refundSucceeded = "refund_succeeded"
        case refundFailed = "refund_failed"
        case refundUnrequested = "refund_unrequested"
        case refundMismatched = "refund_mismatched"
        case compensationRefunded = "compensation_refunded"
        case compensationRefundFailed = "compensation_refund_failed"
        case refundOverdue = "refund_overdue"
        case bookingExpired = "booking_expired"
        case sagaResumed = "saga_resumed"
        case partialRefundRequested = "partial_refund_requested"
        case partiallyRefunded = "partially_refunded"
    }

    /// Whether the step moves the booking along its saga or undoes something.
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case forward
        case compensation
    }

    /// How the step ended.
    public enum Outcome: String, Hashable, Sendable, CaseIterable {
        case succeeded
        case failed
        /// Nothing changed (a duplicate, an input the saga's state ignores).
        case skipped
    }

    public let name: Name
    public let kind: Kind
    public let outcome: Outcome
    public let from: SagaState?
    public let to: SagaState?
    public let detail: String

    public init(_ name: Name, kind: Kind, outcome: Outcome = .succeeded, from: SagaState?, to: SagaState? = nil, detail: String) {
        self.name = name
        self.kind = kind
        self.outcome = outcome
        self.from = from
        self.to = to
        self.detail = detail
    }
}

/// The lifecycle timestamps of a booking a transition sets (to the transition's time).
public struct BookingMilestones: OptionSet, Hashable, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let confirmed = BookingMilestones(rawValue: 1 << 0)
    public static let cancelled = BookingMilestones(rawValue: 1 << 1)
    public static let expired = BookingMilestones(rawValue: 1 << 2)
    public static let refundRequested = BookingMilestones(rawValue: 1 << 3)
    public static let refunded = BookingMilestones(rawValue: 1 << 4)
}
