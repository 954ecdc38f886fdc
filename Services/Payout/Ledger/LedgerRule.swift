/// DESIGN.md's ledger arithmetic, in integer minor units (no floating point anywhere).
enum LedgerRule {
    /// The platform's fee on `amount`: `amount` x `basisPoints` / 10,000, rounded half up to the minor
    /// unit, `(amount * bps + 5000) / 10000`. Computed in 128 bits, so no amount overflows.
    static func fee(amount: Int64, basisPoints: Int) -> Int64 {
        precondition(amount >= 0 && (0...10_000).contains(basisPoints), "the fee of a negative amount or an out-of-range rate")
        return Int64((Int128(amount) * Int128(basisPoints) + 5_000) / 10_000)
    }

    /// How much of `fee` the refunds of a booking have reversed once `refunded` (their running total)
    /// of its `amount` is back with the customer: `(fee * refunded + amount / 2) / amount`, half up,
    /// with `refunded` capped at `amount`. A refund's own reversal is the difference this makes, so
    /// refunds in parts reverse exactly the fee's share of their total and never more than `fee`,
    /// whatever the parts and their order.
    static func feeReversed(fee: Int64, amount: Int64, refunded: Int64) -> Int64 {
        guard amount > 0 else { return 0 }
        let capped = Int128(min(max(refunded, 0), amount))
        return Int64((Int128(fee) * capped + Int128(amount / 2)) / Int128(amount))
    }
}
