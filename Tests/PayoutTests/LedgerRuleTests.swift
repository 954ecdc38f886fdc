import Testing

@testable import Payout

@Suite("Ledger arithmetic")
struct LedgerRuleTests {
    @Test(
        "the fee rounds half up to the minor unit",
        arguments: [
            (10_005, 1_000, 1_001),  // 1000.5
            (10_004, 1_000, 1_000),  // 1000.4
            (1_020, 750, 77),  // 76.5 JPY
            (3_000, 750, 225),
            (1, 5_000, 1),  // 0.5
            (0, 1_000, 0),
            (9_000_000_000_000_000, 10_000, 9_000_000_000_000_000),  // no overflow in 64 bits
        ])
    func fee(amount: Int64, basisPoints: Int, expected: Int64) {
        #expect(LedgerRule.fee(amount: amount, basisPoints: basisPoints) == expected)
    }

    @Test("fee reversals: half up, cumulative, never more than the fee whatever the parts")
    func reversal() {
        #expect(LedgerRule.feeReversed(fee: 2_000, amount: 20_000, refunded: 20_000) == 2_000)
        #expect(LedgerRule.feeReversed(fee: 3_000, amount: 30_000, refunded: 10_000) == 1_000)  // a third of the fee, exactly
        #expect(LedgerRule.feeReversed(fee: 1_001, amount: 10_005, refunded: 5_000) == 500)
        // Two halves of a 1-unit fee on 2 units: per part (1 * 1 + 1) / 2 = 1 each would reverse 2; cumulative reverses 1.
        let first = LedgerRule.feeReversed(fee: 1, amount: 2, refunded: 1)
        let both = LedgerRule.feeReversed(fee: 1, amount: 2, refunded: 2)
        #expect(first == 1 && both == 1)
        // A hundred refunds of 1 on 100 with a fee of 33: exactly the fee in total, never more.
        var reversed: Int64 = 0
        for part in 1...100 {
            let now = LedgerRule.feeReversed(fee: 33, amount: 100, refunded: Int64(part))
            #expect(now >= reversed)
            reversed = now
        }
        #expect(reversed == 33)
        // Refunded beyond the amount (should not happen) still reverses at most the fee.
        #expect(LedgerRule.feeReversed(fee: 33, amount: 100, refunded: 500) == 33)
        #expect(LedgerRule.feeReversed(fee: 0, amount: 0, refunded: 10) == 0)
    }
}
