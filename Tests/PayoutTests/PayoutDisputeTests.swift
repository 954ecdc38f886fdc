import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import SharedModel
import Testing

@testable import Payout

/// Disputes in the ledger and the runs: a disputed booking's entries wait while the dispute is open; a
/// lost one debits the host by the disputed amount; a won one releases the entries to the next run.
@Suite("Payout: disputes hold a booking's entries back; a lost one debits the host, a won one is paid")
struct PayoutDisputeTests {
    /// `payment.disputed` (or, with `outcome`, `payment.dispute_closed`) of `bookingID`'s payment.
    static func dispute(
        _ bookingID: BookingID?, ref: String, amount: Int64, outcome: DisputeOutcome? = nil, status: String = "needs_response", at instant: Date
    ) throws -> EventEnvelope {
        let details = DisputeDetails(
            paymentEventID: try PaymentEventID("evt_\(UUID().uuidString.prefix(8))"), provider: "stripe", disputeRef: ref,
            providerRef: "pi_\(bookingID?.description.prefix(8) ?? "unknown")", bookingID: bookingID, amount: Money(amount: amount, currency: .eur),
            reason: "fraudulent", status: outcome?.rawValue ?? status, providerCreatedAt: instant)
        if let outcome {
            return try PayoutHarness.envelope(PaymentDisputeClosed(dispute: details, outcome: outcome), at: instant, producer: .paymentsWebhook)
        }
        return try PayoutHarness.envelope(PaymentDisputed(dispute: details), at: instant, producer: .paymentsWebhook)
    }

    /// host_a with an account and bookings A (10,000) and B (5,000) of an event that ended on 2026-11-10.
    static func hostWithTwoBookings(_ harness: PayoutHarness, _ client: any TestClientProtocol) async throws -> (a: BookingID, b: BookingID) {
        #expect(try await harness.send(client, .put, "/v1/hosts/host_a", body: ["payout_account": "acct_a1"]).status == .ok)
        let at = try instant("2026-11-10T10:00:00Z")
        let (a, b) = (BookingID(), BookingID())
        try await harness.ledger([
            try PayoutHarness.confirmed(a, host: "host_a", amount: 10_000, confirmedAt: at, endsAt: at),
            try PayoutHarness.confirmed(b, host: "host_a", amount: 5_000, confirmedAt: at, endsAt: at),
        ])
        return (a, b)
    }

    @Test(
        "opened and lost: the open dispute holds its booking back (balance shows it held), and once lost the host's next payout is the disputed amount less than without the dispute"
    )
    func openedAndLost() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            let (a, _) = try await Self.hostWithTwoBookings(harness, client)
            // Both reports of the opening (created, funds_withdrawn) arrive: one dispute.
            try await harness.ledger([
                try Self.dispute(a, ref: "dp_lost", amount: 10_000, at: try instant("2026-11-15T09:00:00Z")),
                try Self.dispute(a, ref: "dp_lost", amount: 10_000, status: "needs_response", at: try instant("2026-11-15T09:00:05Z")),
            ])
            #expect(try await harness.count("SELECT count(*) FROM payout.disputes WHERE status = 'open'") == 1)
            let balance = try await harness.send(client, .get, "/v1/hosts/host_a/balance")
            #expect(balance["balances"] == [["currency": "EUR", "payable": 4_500, "pending": 0, "held": 9_000]])

            // The run pays B alone (5,000 less the 10% fee); A's entries stay open.
            let first = try await harness.runPayout("2026-11-20")
            #expect(first.status == .completed)
            #expect(try await harness.payouts(of: first.id) == ["host_a EUR 4500"])
            #expect(
                try await harness.count(
                    "SELECT count(*) FROM payout.open_entries o JOIN payout.entries e ON e.id = o.entry_id WHERE e.booking_id = \(a.uuid)") == 2)

            // Lost: a `dispute` entry of -10,000, once, however often the closing is delivered.
            let lost = try Self.dispute(a, ref: "dp_lost", amount: 10_000, outcome: .lost, at: try instant("2026-11-21T08:00:00Z"))
            try await harness.ledger([lost])
            try await harness.parts.app.postgres.withTransaction { transaction in
                // A redelivery under another envelope id (the provider's event read by the sweep too) changes nothing.
                try LedgerHandler(platformFeeBasisPoints: 1_000, clock: harness.clock.wallClock).apply(
                    try Self.dispute(a, ref: "dp_lost", amount: 10_000, outcome: .lost, at: try instant("2026-11-21T08:00:00Z")), in: transaction)
            }
            #expect(try await harness.count("SELECT count(*) FROM payout.entries WHERE kind = 'dispute' AND amount = -10000") == 1)
            #expect(try await harness.count("SELECT count(*) FROM payout.disputes WHERE status = 'lost' AND entered") == 1)

            // The next run: a new booking C of 20,000 (18,000 to the host) and A's released 9,000, less the 10,000 lost.
            let c = try instant("2026-11-21T09:00:00Z")
            try await harness.ledger([try PayoutHarness.confirmed(host: "host_a", amount: 20_000, confirmedAt: c, endsAt: c)])
            harness.clock.set(try instant("2026-11-25T06:00:00Z"))
            let second = try await harness.runPayout("2026-11-24")
            #expect(second.status == .completed)
            #expect(try await harness.payouts(of: second.id) == ["host_a EUR 17000"])
            let line = try await harness.postgres.query(
                "SELECT gross, fees, disputes, carried_in, net FROM payout.run_lines WHERE run_id = \(second.id)")
            #expect(line.count == 1)
            if let row = line.first {
                #expect(try row.decode(Int64.self, at: 0) == 20_000)
                #expect(try row.decode(Int64.self, at: 1) == 2_000)
                #expect(try row.decode(Int64.self, at: 2) == 10_000)
                #expect(try row.decode(Int64.self, at: 3) == 9_000)
                #expect(try row.decode(Int64.self, at: 4) == 17_000)
            }
            let payout = try await harness.send(
                client, .get,
                "/v1/payouts/\(try #require(try await harness.postgres.query("SELECT id FROM payout.payouts WHERE run_id = \(second.id)").first?.decode(UUID.self, at: 0)).uuidString.lowercased())"
            )
            let debits = (payout["items"]?.arrayValue ?? []).filter { $0["kind"] == "dispute" }
            #expect(debits.count == 1 && debits.first?["amount"] == -10_000 && debits.first?["booking_id"]?.stringValue == a.description)
            let report = try await harness.send(client, .get, "/v1/payout-runs/\(second.id.uuidString.lowercased())/report.csv")
            #expect(
                report.text.hasPrefix(
                    "host_id,currency,bookings,gross,fees,refunds,fee_reversals,carried_in,net,status,payout_id,disputes,rounding\n"))
            #expect(report.text.contains(",17000,payout,") && report.text.hasSuffix(",10000,0\n"))
            let shown = try await harness.send(client, .get, "/v1/payout-runs/\(second.id.uuidString.lowercased())")
            #expect(shown["totals"]?.arrayValue?.first?["disputes"] == 10_000)
        }
    }

    @Test("opened and won: nothing is debited, and the held entries are paid in the next run")
    func openedAndWon() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            let (a, _) = try await Self.hostWithTwoBookings(harness, client)
            try await harness.ledger([try Self.dispute(a, ref: "dp_won", amount: 4_000, at: try instant("2026-11-15T09:00:00Z"))])
            let first = try await harness.runPayout("2026-11-20")
            #expect(try await harness.payouts(of: first.id) == ["host_a EUR 4500"])

            try await harness.ledger([try Self.dispute(a, ref: "dp_won", amount: 4_000, outcome: .won, at: try instant("2026-11-21T08:00:00Z"))])
            #expect(try await harness.count("SELECT count(*) FROM payout.entries WHERE kind = 'dispute'") == 0)
            #expect(
                try await harness.send(client, .get, "/v1/hosts/host_a/balance")["balances"] == [
                    ["currency": "EUR", "payable": 9_000, "pending": 0, "held": 0]
                ])
            harness.clock.set(try instant("2026-11-22T06:00:00Z"))
            let second = try await harness.runPayout("2026-11-21")
            #expect(second.status == .completed)
            #expect(try await harness.payouts(of: second.id) == ["host_a EUR 9000"])
            #expect(try await harness.count("SELECT count(*) FROM payout.open_entries") == 0)
        }
    }

    @Test(
        "a loss delivered before its booking's confirmation is entered with the confirmation; an opening after the closing changes nothing; a dispute of no known booking is not entered"
    )
    func lossBeforeConfirmation() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            #expect(try await harness.send(client, .put, "/v1/hosts/host_a", body: ["payout_account": "acct_a1"]).status == .ok)
            let booking = BookingID()
            let at = try instant("2026-11-10T10:00:00Z")
            try await harness.ledger([
                try Self.dispute(booking, ref: "dp_early", amount: 3_000, outcome: .lost, at: try instant("2026-11-12T08:00:00Z")),
                // The opening, delivered late: the dispute stays lost.
                try Self.dispute(booking, ref: "dp_early", amount: 3_000, at: try instant("2026-11-11T08:00:00Z")),
                try Self.dispute(nil, ref: "dp_nobody", amount: 3_000, outcome: .lost, at: try instant("2026-11-12T08:00:00Z")),
            ])
            #expect(try await harness.count("SELECT count(*) FROM payout.entries") == 0)
            #expect(try await harness.count("SELECT count(*) FROM payout.disputes") == 1)
            try await harness.ledger([try PayoutHarness.confirmed(booking, host: "host_a", amount: 10_000, confirmedAt: at, endsAt: at)])
            #expect(try await harness.count("SELECT count(*) FROM payout.entries WHERE kind = 'dispute' AND amount = -3000") == 1)
            #expect(try await harness.count("SELECT count(*) FROM payout.disputes WHERE status = 'lost' AND entered") == 1)
            let run = try await harness.runPayout("2026-11-20")
            #expect(try await harness.payouts(of: run.id) == ["host_a EUR 6000"])
        }
    }
}
