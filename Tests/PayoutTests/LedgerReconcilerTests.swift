import Foundation
import Messaging
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Payout

@Suite("Payout ledger: events its consumers never received from the streams are applied from the outbox")
struct LedgerReconcilerTests {
    /// Puts `envelope` in the outbox on `stream` as published `ago` seconds before `now`, as if the
    /// relay had published it and Redis had then lost it before the ledger's consumer read it.
    static func lost(_ envelope: EventEnvelope, on stream: String, ago: TimeInterval, now: Date, postgres: PostgresClient) async throws {
        try await postgres.withTransaction { transaction in
            try Outbox.appendExisting(envelope, stream: stream, in: transaction)
            try transaction.query(
                "UPDATE messaging.outbox SET published_at = \(now.addingTimeInterval(-ago)) WHERE event_id = \(envelope.id.uuid)")
        }
    }

    @Test(
        "a lost booking.confirmed pays its host and a lost refund.succeeded debits it, once; an event within its grace, one already applied and a dead-lettered one are left alone"
    )
    func lostEventsReachTheLedger() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-20T12:00:00Z")))
        let postgres = harness.postgres
        let now = harness.clock.now
        let booking = Streams.stream(for: .booking)
        let payments = Streams.stream(for: .paymentsWebhook)
        try await harness.run { _ in
            let ended = try instant("2026-11-10T20:00:00Z")
            // Lost: a confirmation (10,000 cents for host_a) and the refund of a booking whose
            // confirmation arrived normally (host_b).
            let lostConfirmation = try PayoutHarness.confirmed(
                host: "host_a", amount: 10_000, confirmedAt: ended.addingTimeInterval(-86_400), endsAt: ended)
            try await Self.lost(lostConfirmation, on: booking, ago: 600, now: now, postgres: postgres)
            let refundedBooking = BookingID()
            let delivered = try PayoutHarness.confirmed(
                refundedBooking, host: "host_b", amount: 20_000, confirmedAt: ended.addingTimeInterval(-86_400), endsAt: ended)
            try await harness.ledger([delivered])
            try await Self.lost(delivered, on: booking, ago: 600, now: now, postgres: postgres)
            let lostRefund = try PayoutHarness.refunded(refundedBooking, amount: 5_000, at: ended.addingTimeInterval(-3_600))
            try await Self.lost(lostRefund, on: payments, ago: 900, now: now, postgres: postgres)
            // Not lost yet: published 10 s ago, within the grace.
            let recent = try PayoutHarness.confirmed(host: "host_c", amount: 30_000, confirmedAt: ended.addingTimeInterval(-86_400), endsAt: ended)
            try await Self.lost(recent, on: booking, ago: 10, now: now, postgres: postgres)
            // Dead-lettered by the consumer: an operator decides, not the reconciler.
            let parked = try PayoutHarness.confirmed(host: "host_d", amount: 40_000, confirmedAt: ended.addingTimeInterval(-86_400), endsAt: ended)
            try await Self.lost(parked, on: booking, ago: 600, now: now, postgres: postgres)
            _ = try await postgres.withTransaction { transaction in
                try DeadLetterStore.record(
                    kind: .failure, stream: booking, consumer: LedgerHandler.group, envelope: parked, error: "kept failing", attempts: 8,
                    firstFailedAt: now, in: transaction)
            }

            let reconcilers = harness.parts.ledgerReconcilers(logger: TestEnvironment.logger)
            var applied = 0
            for reconciler in reconcilers { applied += try await reconciler.reconcile() }
            #expect(reconcilers.count == 2, "one per stream the ledger reads")
            #expect(applied == 2, "the lost confirmation and the lost refund")

            let entries = try await postgres.query("SELECT host_id, kind, amount FROM payout.entries ORDER BY host_id, kind, amount").map {
                "\(try $0.decode(String.self, at: 0)) \(try $0.decode(String.self, at: 1)) \(try $0.decode(Int64.self, at: 2))"
            }
            #expect(
                entries == [
                    "host_a fee -1000", "host_a revenue 10000",
                    "host_b fee -2000", "host_b fee_reversal 500", "host_b refund -5000", "host_b revenue 20000",
                ], "\(entries)")
            // Applied once: a second pass finds nothing.
            var again = 0
            for reconciler in reconcilers { again += try await reconciler.reconcile() }
            #expect(again == 0)
        }
    }
}
