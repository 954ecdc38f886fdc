import Foundation
import SharedModel

/// A payout run: one per date (DESIGN.md, Payout).
struct PayoutRun: Sendable, Equatable {
    enum Status: String, Sendable, Codable, CaseIterable {
        case running, completed, failed
    }

    /// Where an unfinished run is; each phase resumes where a killed runner left it.
    enum Phase: String, Sendable {
        /// Listing the host balances with payable entries into batches.
        case planning
        /// Writing each batch's report lines, payouts and items (one transaction per batch).
        case computing
        /// Checking the payouts against the ledger.
        case reconciling
        /// Announcing the payouts (`payout.created`), which starts their transfers.
        case publishing
        case done
    }

    var id: UUID
    var runDate: String
    var cutoff: Date
    var settledBefore: Date
    var status: Status
    var phase: Phase
    /// Host balances (host and currency) with payable entries at the cut-off.
    var hostCount: Int
    var batchCount: Int
    var mismatches: [Mismatch]
    var createdAt: Date
    var startedAt: Date?
    var completedAt: Date?

    var isFinished: Bool { status != .running }
}

/// One way a run's payouts disagree with the ledger.
struct Mismatch: Sendable, Equatable, Codable {
    /// `payout_amount` (a payout is not the sum of its items), `item_owner` (an item's entry is another
    /// host's or currency's), `entry_in_two_payouts`, `line_amount` (a report line is not its payout),
    /// `currency_total` (the run's total is not the ledger movements its payouts consumed).
    var check: String
    var detail: String
}

/// Per currency, what a run paid.
struct RunTotal: Sendable, Equatable {
    var currency: String
    var payouts: Int
    var gross: Int64
    var fees: Int64
    var refunds: Int64
    var feeReversals: Int64
    /// Debits of lost disputes (positive, like fees and refunds).
    var disputes: Int64
    var carriedIn: Int64
    /// Rests below the provider's step, held back to the next run (positive).
    var rounding: Int64
    var net: Int64
}

/// One line of a run's report: a host's balance in one currency.
struct RunLine: Sendable, Equatable {
    var hostID: String
    var currency: String
    var bookings: Int
    var gross: Int64
    var fees: Int64
    var refunds: Int64
    var feeReversals: Int64
    /// Debits of lost disputes (positive, like fees and refunds).
    var disputes: Int64
    var carriedIn: Int64
    /// The rest below the provider's step that the line's payout holds back to the next run (positive).
    var rounding: Int64
    /// What the line's payout pays: `gross - fees - refunds + fee_reversals - disputes + carried_in - rounding`.
    var net: Int64
    /// `payout`, `carried` (zero or negative, or below the provider's smallest transfer) or `no_account`.
    var status: String
    var payoutID: UUID?
}
