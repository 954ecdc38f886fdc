/// The disputes the simulator opened (at most one per intent) and the rules for opening and closing
/// them. A value kept inside ``SimulatorState``, so every change happens within one actor call.
struct DisputeLedger: Sendable {
    private var disputes: [String: SimulatedDispute] = [:]
    /// Dispute id by payment intent id.
    private var byIntent: [String: String] = [:]

    /// The dispute with `id`, if any.
    subscript(id: String) -> SimulatedDispute? { disputes[id] }

    /// Opens a dispute on `intent` for `amount` (default: all it received): 409 when the intent has
    /// not succeeded, 400 when the amount is outside 1...`amount_received`, 409 when it already has a
    /// dispute.
    mutating func open(on intent: SimulatedPaymentIntent, amount: Int?, reason: String, created: Int) throws(ControlError) -> SimulatedDispute {
        guard intent.status == .succeeded else {
            throw ControlError(
                status: 409, code: "not_succeeded", message: "PaymentIntent '\(intent.id)' has not succeeded; only a paid charge can be disputed.")
        }
        let amount = amount ?? intent.amountReceived
        guard amount >= 1, amount <= intent.amountReceived else {
            throw .badRequest("amount must be 1 to \(intent.amountReceived) (the intent's amount_received), got \(amount)")
        }
        if let existing = byIntent[intent.id] {
            throw ControlError(status: 409, code: "already_disputed", message: "PaymentIntent '\(intent.id)' already has dispute '\(existing)'.")
        }
        let dispute = SimulatedDispute(
            amount: amount, currency: intent.currency, charge: Self.chargeID(of: intent), paymentIntent: intent.id, reason: reason,
            created: created)
        disputes[dispute.id] = dispute
        byIntent[intent.id] = dispute.id
        return dispute
    }

    /// Closes the open dispute `id` as `won` or `lost`: 404 when unknown, 409 when already closed
    /// (`needs_response` is no closing status: 400).
    mutating func close(_ id: String, as status: SimulatedDispute.Status) throws(ControlError) -> SimulatedDispute {
        guard status.isClosed else { throw .badRequest("status must be \"won\" or \"lost\"") }
        guard var dispute = disputes[id] else { throw ControlError(status: 404, code: "not_found", message: "No such dispute: '\(id)'") }
        guard !dispute.status.isClosed else {
            throw ControlError(status: 409, code: "already_closed", message: "Dispute '\(id)' is already closed (\(dispute.status.rawValue)).")
        }
        dispute.status = status
        disputes[id] = dispute
        return dispute
    }

    /// Stripe's refusal of a refund while the intent's charge has a dispute that was not won; `nil`
    /// when a refund may go ahead.
    func refundRefusal(for intentID: String) -> StripeError? {
        guard let id = byIntent[intentID], let dispute = disputes[id], dispute.status != .won else { return nil }
        return StripeError(status: 400, code: "charge_disputed", message: "Charge \(dispute.charge) has been charged back; cannot issue a refund.")
    }

    /// Forgets every dispute.
    mutating func removeAll() {
        disputes.removeAll()
        byIntent.removeAll()
    }

    /// The intent's charge id; a succeeded intent always has one, else a stable id derived from the
    /// intent's.
    private static func chargeID(of intent: SimulatedPaymentIntent) -> String {
        intent.chargeID ?? "ch_\(intent.id.dropFirst("pi_".count))"
    }
}
