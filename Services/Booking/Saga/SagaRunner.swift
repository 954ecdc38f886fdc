import Foundation
import Postgres
import SharedModel

/// Seats a committed saga move released in Postgres, to release in Redis afterwards.
struct SeatRelease: Sendable {
    let eventID: EventID
    let holdID: HoldID
    let seats: [SeatID]
}

/// What one saga input did.
struct SagaRun: Sendable {
    /// The saga as read before the decision (nil: the input named no booking we know).
    let saga: SagaSnapshot?
    let decision: SagaDecision
    /// The seats the decision released in Postgres (nil when it released none).
    let released: SeatRelease?

    var verdict: SagaDecision.Verdict { decision.verdict }

    /// The customer's held-seat reservation to release when the decision moved the booking out of
    /// `pending_payment` (confirmed, cancelled, expired): its seats no longer count as held.
    var endedReservation: HeldSeatsReservation? {
        guard let saga, saga.state == .awaitingPayment, let final = decision.finalState, final != .awaitingPayment else { return nil }
        return HeldSeatsReservation(customerID: saga.customerID, holdID: saga.holdID)
    }
}

/// The one path every saga input takes, inside the caller's transaction: read the snapshot (and, for
/// a provider's refund report, the refund requests it may be about), decide with the pure
/// ``SagaDecider``, apply the decision with ``SagaRepository``. The coordinator, the deadline poller,
/// the cancel route and an operator's resume are adapters around it.
struct SagaRunner: Sendable {
    let decider: SagaDecider

    /// Runs `input` for `bookingID` at `now`. With `locking`, the booking and saga rows are locked
    /// first (an input that must see the latest state, e.g. a resume).
    func run(
        _ input: SagaInput, bookingID: BookingID?, cause: SagaCause, locking: Bool = false, at now: Date, in transaction: PostgresTransaction
    ) throws -> SagaRun {
        let saga = try bookingID.flatMap { try SagaRepository(transaction: transaction).snapshot(of: $0, locking: locking) }
        return try run(input, saga: saga, cause: cause, at: now, in: transaction)
    }

    /// Runs `input` for `saga` as the caller read it in `transaction` (nil: no booking we know).
    func run(_ input: SagaInput, saga: SagaSnapshot?, cause: SagaCause, at now: Date, in transaction: PostgresTransaction) throws -> SagaRun {
        let repository = SagaRepository(transaction: transaction)
        let requests = try input.refundReport.map { report in
            try repository.refundRequests(reportedAs: report.refundID, providerRef: report.providerRef, amount: report.amount)
        }
        let decision = try decider.decide(input, saga: saga, refundRequests: requests ?? [], now: now, newRefundID: RefundID())
        let seats = try repository.apply(decision, cause: cause, at: now)
        guard let saga, decision.releasesSeats else { return SagaRun(saga: saga, decision: decision, released: nil) }
        return SagaRun(saga: saga, decision: decision, released: SeatRelease(eventID: saga.eventID, holdID: saga.holdID, seats: seats))
    }

    /// Runs a payments-service event (the caller holds its inbox row); nil for an event the saga does
    /// not react to.
    func run(_ envelope: EventEnvelope, at now: Date, in transaction: PostgresTransaction) throws -> SagaRun? {
        guard let input = try SagaInput(envelope) else { return nil }
        return try run(input, bookingID: input.bookingID, cause: .event(envelope), at: now, in: transaction)
    }
}
