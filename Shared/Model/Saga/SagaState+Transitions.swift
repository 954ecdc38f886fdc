import Foundation

extension SagaState {
    /// The states this state may move to, exactly DESIGN.md's saga table:
    ///
    /// | from | to |
    /// |---|---|
    /// | `awaiting_payment` | `confirmed`, `cancelled`, `expired` |
    /// | `confirmed` | `cancel_requested` (refund due), `cancelled` (no refund due) |
    /// | `cancel_requested` | `refund_pending`, `refunded`, `compensation_failed` |
    /// | `refund_pending` | `refunded`, `compensation_failed` |
    /// | `compensation_failed` | `refund_pending`, `refunded` (operator `saga resume`) |
    /// | `refunded`, `cancelled`, `expired` | none (terminal) |
    ///
    /// `saga resume` first asks the provider for an existing refund: if it finds a succeeded
    /// one the saga moves straight to `refunded`; otherwise it retries with a new idempotency key
    /// and moves to `refund_pending`. Resume never goes back to `cancel_requested` (the refund
    /// was already requested once) and never gives up into `cancelled` (money is owed).
    ///
    /// No state may move to itself: redelivered events are absorbed by the inbox and the
    /// caller's own checks, not by a self-transition.
    public var allowedNextStates: Set<SagaState> {
        switch self {
        case .awaitingPayment: [.confirmed, .cancelled, .expired]
        case .confirmed: [.cancelRequested, .cancelled]
        case .cancelRequested: [.refundPending, .refunded, .compensationFailed]
        case .refundPending: [.refunded, .compensationFailed]
        case .compensationFailed: [.refundPending, .refunded]
        case .refunded, .cancelled, .expired: []
        }
    }

    /// Whether the saga table allows moving from this state to `next`.
    public func canTransition(to next: SagaState) -> Bool {
        allowedNextStates.contains(next)
    }
}
