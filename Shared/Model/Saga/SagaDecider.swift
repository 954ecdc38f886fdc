import Foundation

/// The booking saga's decisions (DESIGN.md, saga table), as a pure function: given the saga's
/// snapshot and one input it returns a ``SagaDecision``. It reads no clock, generates nothing random
/// and writes nowhere; the caller passes the time and the id of a refund it may ask for.
///
/// - `payment.intent_created`: the booking shows `payment: {provider_ref, client_secret}`.
/// - `payment.succeeded` for a booking awaiting payment, with its amount and currency, made at or
///   before `payment_due_at`: `confirmed` and `booking.confirmed`.
/// - a payment for an unknown booking, with another amount or currency, made after `payment_due_at`,
///   for a booking that is no longer awaiting payment, or a second payment of a confirmed booking:
///   `refund.requested` and a `review` dead letter; the booking is never confirmed by it.
/// - a final `payment.failed` while awaiting payment: `cancelled` (reason `payment_failed`), seats
///   released; a non-final one (the customer may retry the same intent) is a step in the log and the
///   booking keeps waiting; after a success it changes nothing.
/// - `refund.succeeded` of a refund the saga asked for (matched by refund id, else by payment and
///   amount), for that amount: `refunded` when it is a cancellation's refund, a step when it is a
///   compensation's; any other refund is a `review` dead letter and moves nothing. `refund.failed` of
///   the saga's current cancellation refund: `compensation_failed`; of anything else: a `review`.
/// - a cancellation of a booking awaiting payment, or of a confirmed one without refund due:
///   `cancelled`, seats released; of a confirmed one at least ``Policy/refundCutoff`` before the
///   event, or of any confirmed one when its event was cancelled: `cancel_requested`, then
///   `refund_pending` with the refund of its payment in full.
/// - the deadline: an unpaid booking `expired`, seats released; a refund still unconfirmed after
///   its bound `compensation_failed`.
/// - an operator's resume of a `compensation_failed` saga: `refund_pending` again, with a refund
///   request that looks for an existing refund at the provider first.
public struct SagaDecider: Sendable {
    /// The saga's rules that are settings.
    public struct Policy: Hashable, Sendable {
        /// How long a cancellation's refund may stay unconfirmed before the saga is
        /// `compensation_failed` (`REFUND_PENDING_BOUND`).
        public var refundPendingBound: Duration
        /// How long before the event's start a confirmed booking may be cancelled with a full refund.
        public var refundCutoff: Duration

        /// The default of `REFUND_PENDING_BOUND`: a refund still unconfirmed an hour after it was asked
        /// for needs a person (the provider answers a refund at once and its webhook follows within
        /// seconds; the provider worker's retries of a failing call end well within the hour).
        public static let defaultRefundPendingBound: Duration = .seconds(3600)

        public init(refundPendingBound: Duration = Self.defaultRefundPendingBound, refundCutoff: Duration = .seconds(24 * 3600)) {
            self.refundPendingBound = refundPendingBound
            self.refundCutoff = refundCutoff
        }
    }

    public var policy: Policy

    public init(policy: Policy = Policy()) {
        self.policy = policy
    }

    /// The decision about `input` for `saga` (nil: the input names no booking we know) at `now`.
    /// `refundRequests` are the saga's refund requests the input may be about (for a refund report:
    /// the one its refund id names and the open ones of its payment); `newRefundID` is used when the
    /// decision asks for a refund. Throws ``SagaInconsistency`` or ``IllegalTransition`` when the
    /// stored data contradicts the saga table: a fault to retry and dead-letter, never a decision.
    public func decide(
        _ input: SagaInput, saga: SagaSnapshot?, refundRequests: [SagaRefundRequest] = [], now: Date, newRefundID: RefundID
    ) throws -> SagaDecision {
        var decision = Decision(saga: saga, now: now, newRefundID: newRefundID, policy: policy)
        switch input {
        case .paymentIntentCreated(let event): decision.intentCreated(event)
        case .paymentSucceeded(let payment): try decision.paymentSucceeded(payment)
        case .paymentFailed(let failure): try decision.paymentFailed(failure)
        case .refundSucceeded(let refund):
            try decision.refundSucceeded(
                refund,
                request: SagaRefundRequest.matching(
                    reportedAs: refund.refundID, providerRef: refund.providerRef, amount: refund.amount, among: refundRequests))
        case .refundFailed(let refund):
            try decision.refundFailed(
                refund,
                request: SagaRefundRequest.matching(
                    reportedAs: refund.refundID, providerRef: refund.providerRef, amount: refund.amount, among: refundRequests))
        case .cancellation(let reason): try decision.cancel(reason)
        case .deadlinePassed: try decision.deadlinePassed()
        case .resume(let operatorName): try decision.resume(by: operatorName)
        case .partialRefund(let amount, let note): decision.partialRefund(amount, note: note)
        }
        return decision.result
    }
}

/// One decision being made: the snapshot as it moves, and what has been decided so far.
private struct Decision {
    private(set) var saga: SagaSnapshot?
    let now: Date
    let newRefundID: RefundID
    let policy: SagaDecider.Policy
    private(set) var result: SagaDecision

    init(saga: SagaSnapshot?, now: Date, newRefundID: RefundID, policy: SagaDecider.Policy) {
        self.saga = saga
        self.result = SagaDecision(bookingID: saga?.bookingID)
        self.now = now
        self.newRefundID = newRefundID
        self.policy = policy
    }

    // MARK: Payments

    mutating func intentCreated(_ event: PaymentIntentCreated) {
        guard let saga, saga.state == .awaitingPayment, saga.providerRef == nil else {
            result.verdict = .ignored
            return
        }
        result.paymentIntent = (event.providerRef, event.clientSecret)
        log(.paymentIntentCreated, kind: .forward, showsState: false, detail: "\(event.provider) \(event.providerRef)")
    }

    mutating func paymentSucceeded(_ payment: PaymentSucceeded) throws {
        guard let saga else {
            compensate(payment, reason: .unknownBooking, why: "payment for no known booking")
            return
        }
        if saga.confirmedAt != nil, saga.providerRef == payment.providerRef {
            // The payment that confirmed the booking, reported again (e.g. by another source): applied once.
            log(.paymentSucceeded, kind: .forward, outcome: .skipped, detail: "already applied")
            return
        }
        switch saga.state {
        case .awaitingPayment:
            if payment.amount != saga.amount {
                compensate(payment, reason: .amountMismatch, why: "paid \(payment.amount), the booking costs \(saga.amount)")
            } else if payment.providerCreatedAt > saga.paymentDueAt {
                compensate(
                    payment, reason: .latePayment,
                    why: "paid at \(RFC3339.string(from: payment.providerCreatedAt)), due by \(RFC3339.string(from: saga.paymentDueAt))")
            } else {
                try confirm(saga, payment: payment)
            }
        case .confirmed:
            compensate(payment, reason: .duplicatePayment, why: "a second payment of a confirmed booking")
        default:
            compensate(payment, reason: .latePayment, why: "payment for a booking that is \(saga.state.rawValue)")
        }
    }

    private mutating func confirm(_ saga: SagaSnapshot, payment: PaymentSucceeded) throws {
        guard !saga.seats.isEmpty else { throw SagaInconsistency("booking \(saga.bookingID) awaits payment without seats") }
        try move(
            to: .confirmed, step: .bookingConfirmed, detail: "paid \(payment.amount) (\(payment.provider) \(payment.providerRef))",
            milestones: .confirmed, paymentReference: payment.providerRef)
        result.events.append(
            BookingConfirmed(
                bookingID: saga.bookingID, eventID: saga.eventID, hostID: saga.hostID, customerID: saga.customerID, seatIDs: saga.seats,
                amount: saga.amount, providerRef: payment.providerRef, confirmedAt: now, eventEndsAt: saga.eventEndsAt))
    }

    /// A payment the booking must not keep: `refund.requested` (its key derived from the payment
    /// event, so a redelivery asks for the same refund) and a `review` dead letter naming the reason.
    private mutating func compensate(_ payment: PaymentSucceeded, reason: RefundReason, why: String) {
        let request = RefundRequested(
            refundID: newRefundID, bookingID: saga?.bookingID ?? payment.bookingID, providerRef: payment.providerRef, amount: payment.amount,
            reason: reason, idempotencyKey: "refund-\(payment.provider)-\(payment.paymentEventID)")
        result.events.append(request)
        result.refundRequest = .init(event: request, purpose: .compensation)
        log(.refundRequested, kind: .compensation, detail: "\(reason.rawValue): \(why)")
        result.review = "\(reason.rawValue): \(why); refund \(request.refundID) of \(payment.amount) requested"
    }

    mutating func paymentFailed(_ failure: PaymentFailed) throws {
        guard let saga else {
            result.verdict = .ignored
            return
        }
        guard saga.state == .awaitingPayment, saga.providerRef == nil || saga.providerRef == failure.providerRef else {
            log(.paymentFailed, kind: .forward, outcome: .skipped, detail: "the booking is \(saga.state.rawValue)")
            return
        }
        guard failure.isFinal else {
            // The customer may still pay with the same intent: the booking keeps waiting (a later success
            // confirms it, the deadline expires it).
            log(
                .paymentAttemptFailed, kind: .forward, outcome: .failed,
                detail: "payment attempt failed, the payment may still succeed: \(failure.reason ?? "no reason given")")
            return
        }
        try move(
            to: .cancelled, step: .bookingCancelled, detail: "payment failed: \(failure.reason ?? "no reason given")", milestones: .cancelled,
            releasesSeats: true)
        result.events.append(BookingCancelled(bookingID: saga.bookingID, reason: .paymentFailed, refundDue: .zero(saga.amount.currency)))
    }

    // MARK: Refunds

    /// A refund completes the saga only when it is the refund the saga asked for, for that amount. A
    /// compensation's refund is recorded and leaves the saga where it is; a refund nobody asked for, or
    /// for another amount than asked, is a `review` dead letter.
    mutating func refundSucceeded(_ refund: RefundSucceeded, request: SagaRefundRequest?) throws {
        let reported = "\(refund.amount) of \(refund.providerRef)\(refund.providerRefundRef.map { " (\($0))" } ?? "")"
        guard let request else {
            review(
                .refundUnrequested, detail: "refunded \(reported), which no request of ours asked for",
                error: "a refund of \(reported) that the platform never requested")
            return
        }
        guard request.amount == refund.amount, request.providerRef == refund.providerRef else {
            review(
                .refundMismatched, detail: "refunded \(reported); refund \(request.refundID) asked for \(request.amount)",
                error: "refund \(request.refundID) asked for \(request.amount) of \(request.providerRef), the provider refunded \(reported)")
            return
        }
        guard request.status != .succeeded else {
            log(.refundSucceeded, kind: .compensation, outcome: .skipped, detail: "refund \(request.refundID) already recorded")
            return
        }
        result.refundCompletion = .init(refundID: request.refundID, status: .succeeded, providerRefundRef: refund.providerRefundRef)
        if request.purpose == .partial {
            log(.partiallyRefunded, kind: .compensation, detail: "refunded \(reported) (partial refund \(request.refundID)); the booking stays")
            return
        }
        if request.purpose == .cancellation, let saga, saga.bookingID == request.bookingID,
            [.cancelRequested, .refundPending, .compensationFailed].contains(saga.state)
        {
            try move(to: .refunded, step: .refunded, detail: "refunded \(reported) (refund \(request.refundID))", milestones: .refunded)
            return
        }
        log(.compensationRefunded, kind: .compensation, detail: "refunded \(reported) (\(request.purpose.rawValue) refund \(request.refundID))")
    }

    /// A refund's failure fails the saga only when it is the saga's current request; any other failed
    /// refund (a compensation, an attempt an operator's resume replaced) is a `review` dead letter.
    mutating func refundFailed(_ refund: RefundFailed, request: SagaRefundRequest?) throws {
        if let request, request.status == .requested {
            result.refundCompletion = .init(refundID: request.refundID, status: .failed, providerRefundRef: nil)
        }
        if let saga, let request, request.purpose == .cancellation, request.isCurrent, saga.bookingID == request.bookingID,
            [.cancelRequested, .refundPending].contains(saga.state)
        {
            try move(
                to: .compensationFailed, step: .refundFailed, detail: refund.error ?? "refused", milestones: [],
                lastError: refund.error ?? "refund refused")
            return
        }
        log(.compensationRefundFailed, kind: .compensation, outcome: .failed, detail: refund.error ?? "refused")
        let which = request.map { "\($0.purpose.rawValue) refund \($0.refundID)" } ?? "a refund the platform never requested"
        result.review = "\(which) of \(refund.amount) for \(refund.providerRef) was refused: \(refund.error ?? "no reason given")"
    }

    /// A step in the booking's log (when there is a booking) and a `review` dead letter.
    private mutating func review(_ name: SagaStep.Name, detail: String, error: String) {
        log(name, kind: .compensation, outcome: .skipped, detail: detail)
        result.review = error
    }

    // MARK: Cancellation, deadline, resume

    mutating func cancel(_ reason: CancellationReason) throws {
        guard let saga else {
            result.verdict = .ignored
            return
        }
        // Cancelled, or cancelled with its refund on the way or done: answered unchanged.
        if [.cancelled, .cancelRequested, .refundPending, .refunded].contains(saga.state) {
            result.verdict = .alreadyCancelled
            return
        }
        guard saga.state == .awaitingPayment || saga.state == .confirmed else {
            result.verdict = .notCancellable(saga.state)
            return
        }
        // The refund policy: a confirmed booking cancelled at least `refundCutoff` of elapsed time before
        // the event starts is refunded in full; later, nothing is refunded. Elapsed time is measured
        // between instants, so a daylight-saving change in between shifts nothing. A cancelled event
        // refunds every paid booking in full, whenever it is cancelled.
        let withinPolicy =
            reason == .eventCancelled || saga.eventStartsAt.timeIntervalSince(now) >= policy.refundCutoff.timeInterval
        let refundable = saga.state == .confirmed && saga.providerRef != nil && !saga.refundable.isZero && withinPolicy
        let refundDue = refundable ? saga.refundable : .zero(saga.amount.currency)
        let cancelled = BookingCancelled(bookingID: saga.bookingID, reason: reason, refundDue: refundDue)
        let detail = "cancelled by \(reason.rawValue); seats released; refund due \(refundDue)"
        guard refundable else {
            try move(to: .cancelled, step: .bookingCancelled, detail: detail, milestones: .cancelled, releasesSeats: true)
            result.events.append(cancelled)
            return
        }
        try move(to: .cancelRequested, step: .cancelRequested, detail: detail, milestones: [.cancelled, .refundRequested], releasesSeats: true)
        let key = "refund-cancel-\(saga.bookingID)"
        result.events.append(cancelled)
        let refundReason: RefundReason =
            switch reason {
            case .admin: .adminCancellation
            case .eventCancelled: .eventCancellation
            case .customer, .paymentFailed: .customerCancellation
            }
        try requestRefund(
            reason: refundReason, idempotencyKey: key, lookupExisting: false,
            step: .refundRequested, detail: "refund of \(refundDue) requested under key \(key)")
    }

    mutating func deadlinePassed() throws {
        guard let saga else {
            result.verdict = .ignored
            return
        }
        switch saga.state {
        case .cancelRequested, .refundPending:
            let reason = "no refund.succeeded or refund.failed within the refund's bound"
            try move(to: .compensationFailed, step: .refundOverdue, detail: reason, milestones: [], lastError: reason)
        case .awaitingPayment:
            try move(
                to: .expired, step: .bookingExpired, detail: "no payment by \(RFC3339.string(from: saga.paymentDueAt)) and its grace",
                milestones: .expired, releasesSeats: true)
            result.events.append(BookingExpired(bookingID: saga.bookingID))
        default:
            result.verdict = .ignored
        }
    }

    /// An operator's refund of part of a confirmed booking: at most what is left of its payment (the
    /// amount paid less the partial refunds asked for and not failed); the booking stays confirmed.
    mutating func partialRefund(_ amount: Money, note: String) {
        guard let saga else {
            result.verdict = .ignored
            return
        }
        guard saga.state == .confirmed, let providerRef = saga.providerRef else {
            result.verdict = .notRefundable(saga.state)
            return
        }
        guard amount.currency == saga.amount.currency, amount.amount > 0, amount.amount <= saga.refundable.amount else {
            result.verdict = .refundExceedsPayment(refundable: saga.refundable)
            return
        }
        let request = RefundRequested(
            refundID: newRefundID, bookingID: saga.bookingID, providerRef: providerRef, amount: amount, reason: .partialRefund,
            idempotencyKey: "refund-partial-\(newRefundID)")
        result.events.append(request)
        result.refundRequest = .init(event: request, purpose: .partial, note: note)
        log(.partialRefundRequested, kind: .compensation, detail: "partial refund \(newRefundID) of \(amount) requested: \(note)")
        result.verdict = .partialRefundRequested(request)
    }

    mutating func resume(by operatorName: String) throws {
        guard let saga else {
            result.verdict = .ignored
            return
        }
        guard saga.state == .compensationFailed else {
            result.verdict = .notResumable(saga.state)
            return
        }
        let attempt = saga.attempts + 1
        let key = "refund-cancel-\(saga.bookingID)-resume-\(attempt)"
        try requestRefund(
            reason: .operatorResume, idempotencyKey: key, lookupExisting: true, step: .sagaResumed,
            detail: "resumed by \(operatorName) (attempt \(attempt)): an existing refund at the provider is used, else a new one under key \(key)",
            countsAttempt: true)
        result.verdict = .resumed(attempt: attempt, idempotencyKey: key)
    }

    /// Moves the saga to `refund_pending` with the deadline `now + bound` and asks for the refund of
    /// the booking's payment: all of it, less the partial refunds asked for and not failed.
    private mutating func requestRefund(
        reason: RefundReason, idempotencyKey: String, lookupExisting: Bool, step: SagaStep.Name, detail: String, countsAttempt: Bool = false
    ) throws {
        guard let saga else { return }
        guard let providerRef = saga.providerRef else { throw SagaInconsistency("booking \(saga.bookingID) is refunded but names no payment") }
        let request = RefundRequested(
            refundID: newRefundID, bookingID: saga.bookingID, providerRef: providerRef, amount: saga.refundable, reason: reason,
            idempotencyKey: idempotencyKey, lookupExisting: lookupExisting)
        try move(
            to: .refundPending, step: step, detail: detail, milestones: [], deadline: now.adding(policy.refundPendingBound),
            countsAttempt: countsAttempt)
        result.events.append(request)
        result.refundRequest = .init(event: request, purpose: .cancellation)
    }

    // MARK: Building the decision

    /// A step in the booking's log, when there is a booking.
    private mutating func log(
        _ name: SagaStep.Name, kind: SagaStep.Kind, outcome: SagaStep.Outcome = .succeeded, showsState: Bool = true, detail: String
    ) {
        guard let saga else { return }
        result.steps.append(SagaStep(name, kind: kind, outcome: outcome, from: showsState ? saga.state : nil, to: nil, detail: detail))
    }

    /// The saga's move to `next` (which the saga table must allow), logged as a forward step.
    private mutating func move(
        to next: SagaState, step name: SagaStep.Name, detail: String, milestones: BookingMilestones, paymentReference: String? = nil,
        releasesSeats: Bool = false, lastError: String? = nil, deadline: Date? = nil, countsAttempt: Bool = false
    ) throws(IllegalTransition) {
        guard var saga else { return }
        var machine = BookingSaga(state: saga.state)
        try machine.transition(to: next)
        result.transitions.append(
            SagaDecision.Transition(
                from: saga.state, to: next, fromVersion: saga.version, bookingStatus: machine.bookingStatus, milestones: milestones,
                paymentReference: paymentReference, releasesSeats: releasesSeats, lastError: lastError, deadline: deadline,
                countsAttempt: countsAttempt, step: SagaStep(name, kind: .forward, from: saga.state, to: next, detail: detail)))
        saga.state = next
        saga.version += 1
        if let paymentReference { saga.providerRef = paymentReference }
        self.saga = saga
    }
}
