import Foundation
import Messaging
import SharedModel
import Testing

@testable import Payout

/// Three nightly runs over a ledger with every case DESIGN.md names, each checked line by line
/// against a table computed by hand (amounts in minor units; fees half up).
///
/// Hosts (platform fee 10%):
/// - `host_eur` (EUR): B1 10,005 (fee 1,000.5 -> 1,001; after run 1 a refund of 5,000 reverses
///   1,001 x 5,000 / 10,005 = 500.2 -> 500), B2 20,000 refunded in full before run 1 (fee 2,000
///   reversed whole), B3 30,000 refunded 10,000 before run 1 (fee 3,000, 1,000 reversed), B4 50,000
///   whose event ends too late for run 1 (pending), paid by run 2.
/// - `host_jpy` (own fee 7.5%): J1 1,020 JPY (fee 76.5 -> 77), J2 3,000 JPY (fee 225) and E1 5,000 EUR
///   (fee 375): two currencies, one with 0 decimals.
/// - `host_neg` (EUR): N1 10,000 paid by run 1 and refunded in full after it: run 2 has -9,000 and
///   pays nothing; run 3 nets it against N2 20,000 (fee 2,000) and pays 9,000.
/// - `host_noacct` (EUR): A1 8,000 without an account: carried by runs 1 and 2 (`no_account`); the
///   account is set before run 3, which pays the 7,200 it carried in.
/// - `host_late` (EUR): L1 40,000 whose event ends after run 3's settlement boundary: open in every
///   run, in none of their plans, reports or payouts.
/// - Events that move nothing: a cancelled and an expired booking, and a refund of a booking that
///   was never confirmed (a late payment given back).
@Suite("Payout runs: a hand-computed ledger over three runs")
struct PayoutFixtureTests {
    @Test("every report line and payout equals the hand-computed table; balances and totals follow")
    func handComputed() async throws {
        let clock = TestClock(try instant("2026-11-10T09:00:00Z"))
        let harness = try await PayoutHarness.make(settings: ["PLATFORM_FEE_BPS": "1000", "PAYOUT_SETTLEMENT_DELAY": "48h"], clock: clock)
        try await harness.run { client in
            for (host, account, fee) in [("host_eur", "acct_eur1", nil), ("host_jpy", "acct_jpy1", 750), ("host_neg", "acct_neg1", nil)]
                as [(String, String, Int?)]
            {
                var body: [String: JSONValue] = ["payout_account": .string(account)]
                if let fee { body["fee_bps"] = .integer(Int64(fee)) }
                let put = try await harness.send(client, .put, "/v1/hosts/\(host)", body: .object(body))
                #expect(put.status == .ok, "\(put.text)")
            }
            let confirmedAt = try instant("2026-11-10T10:00:00Z")
            let ended = try instant("2026-11-15T20:00:00Z")
            let (b1, b2, b3, b4, n1) = (BookingID(), BookingID(), BookingID(), BookingID(), BookingID())
            try await harness.ledger([
                try PayoutHarness.confirmed(b1, host: "host_eur", amount: 10_005, confirmedAt: confirmedAt, endsAt: ended),
                try PayoutHarness.confirmed(b2, host: "host_eur", amount: 20_000, confirmedAt: confirmedAt, endsAt: ended),
                try PayoutHarness.confirmed(b3, host: "host_eur", amount: 30_000, confirmedAt: confirmedAt, endsAt: ended),
                try PayoutHarness.confirmed(
                    b4, host: "host_eur", amount: 50_000, confirmedAt: confirmedAt, endsAt: try instant("2026-11-20T12:00:00Z")),
                try PayoutHarness.confirmed(host: "host_jpy", amount: 1_020, currency: .jpy, confirmedAt: confirmedAt, endsAt: ended),
                try PayoutHarness.confirmed(host: "host_jpy", amount: 3_000, currency: .jpy, confirmedAt: confirmedAt, endsAt: ended),
                try PayoutHarness.confirmed(host: "host_jpy", amount: 5_000, confirmedAt: confirmedAt, endsAt: ended),
                try PayoutHarness.confirmed(n1, host: "host_neg", amount: 10_000, confirmedAt: confirmedAt, endsAt: ended),
                try PayoutHarness.confirmed(host: "host_noacct", amount: 8_000, confirmedAt: confirmedAt, endsAt: ended),
                try PayoutHarness.confirmed(
                    host: "host_late", amount: 40_000, confirmedAt: confirmedAt, endsAt: try instant("2026-12-01T12:00:00Z")),
                try PayoutHarness.refunded(b2, amount: 20_000, at: try instant("2026-11-12T08:00:00Z")),
                try PayoutHarness.refunded(b3, amount: 10_000, at: try instant("2026-11-12T09:00:00Z")),
                try PayoutHarness.envelope(
                    BookingCancelled(bookingID: BookingID(), reason: .customer, refundDue: Money(amount: 0, currency: .eur)), at: confirmedAt,
                    producer: .booking),
                try PayoutHarness.envelope(BookingExpired(bookingID: BookingID()), at: confirmedAt, producer: .booking),
                try PayoutHarness.refunded(BookingID(), amount: 7_000, at: try instant("2026-11-12T10:00:00Z")),
            ])
            #expect(try await harness.count("SELECT count(*) FROM payout.entries") == 10 * 2 + 2 * 2)

            // Run 1: 2026-11-20, cut off at its end; settled = events ended by 2026-11-19T00:00Z.
            clock.set(try instant("2026-11-21T06:00:00Z"))
            let balance = try await harness.send(client, .get, "/v1/hosts/host_eur/balance")
            #expect(balance["balances"] == [["currency": "EUR", "payable": 27_004, "pending": 45_000, "held": 0]])
            let run1 = try await harness.runPayout("2026-11-20")
            #expect(run1.status == .completed)
            #expect(run1.cutoff == (try instant("2026-11-21T00:00:00Z")))
            #expect(
                try await harness.lines(of: run1.id) == [
                    "host_eur EUR 3 60005 6001 30000 3000 0 27004 payout",
                    "host_jpy EUR 1 5000 375 0 0 0 4625 payout",
                    "host_jpy JPY 2 4020 302 0 0 0 3718 payout",
                    "host_neg EUR 1 10000 1000 0 0 0 9000 payout",
                    "host_noacct EUR 1 8000 800 0 0 0 7200 no_account",
                ])
            #expect(
                try await harness.payouts(of: run1.id) == [
                    "host_eur EUR 27004", "host_jpy EUR 4625", "host_jpy JPY 3718", "host_neg EUR 9000",
                ])

            // Between runs: a refund of B1 (already paid) and the whole of N1 (paid); N2 confirmed.
            try await harness.ledger([
                try PayoutHarness.refunded(b1, amount: 5_000, at: try instant("2026-11-22T10:00:00Z")),
                try PayoutHarness.refunded(n1, amount: 10_000, at: try instant("2026-11-22T11:00:00Z")),
                try PayoutHarness.confirmed(
                    host: "host_neg", amount: 20_000, confirmedAt: try instant("2026-11-23T10:00:00Z"), endsAt: try instant("2026-11-23T12:00:00Z")),
            ])

            // Run 2: 2026-11-23; settled = ended by 2026-11-22T00:00Z (B4 yes, N2 no).
            clock.set(try instant("2026-11-24T06:00:00Z"))
            let run2 = try await harness.runPayout("2026-11-23")
            #expect(
                try await harness.lines(of: run2.id) == [
                    "host_eur EUR 1 50000 5000 5000 500 0 40500 payout",
                    "host_neg EUR 0 0 0 10000 1000 0 -9000 carried",
                    "host_noacct EUR 1 0 0 0 0 7200 7200 no_account",
                ])
            #expect(try await harness.payouts(of: run2.id) == ["host_eur EUR 40500"])
            let negative = try await harness.send(client, .get, "/v1/hosts/host_neg/balance")
            #expect(negative["balances"] == [["currency": "EUR", "payable": -9_000, "pending": 18_000, "held": 0]])

            // Run 3: 2026-11-26, after host_noacct set its account.
            let put = try await harness.send(client, .put, "/v1/hosts/host_noacct", body: ["payout_account": "acct_late1"])
            #expect(put.status == .ok)
            clock.set(try instant("2026-11-27T06:00:00Z"))
            let run3 = try await harness.runPayout("2026-11-26")
            #expect(
                try await harness.lines(of: run3.id) == [
                    "host_neg EUR 1 20000 2000 0 0 -9000 9000 payout",
                    "host_noacct EUR 1 0 0 0 0 7200 7200 payout",
                ])
            #expect(try await harness.payouts(of: run3.id) == ["host_neg EUR 9000", "host_noacct EUR 7200"])

            // Every entry of a settled booking is paid exactly once; nothing is open but L1's, not settled yet.
            #expect(try await harness.count("SELECT count(*) FROM payout.open_entries WHERE host_id <> 'host_late'") == 0)
            #expect(try await harness.count("SELECT count(*) FROM payout.open_entries WHERE host_id = 'host_late'") == 2)
            #expect(try await harness.count("SELECT count(*) FROM payout.run_hosts WHERE host_id = 'host_late'") == 0)
            #expect(
                try await harness.count(
                    "SELECT count(*) FROM (SELECT entry_id FROM payout.payout_items WHERE NOT released GROUP BY entry_id HAVING count(*) > 1) twice")
                    == 0)
            let entries = try await harness.count("SELECT count(*) FROM payout.entries")
            #expect(try await harness.count("SELECT count(*) FROM payout.payout_items") == entries - 2)

            // The report and the run as the API shows them.
            let report = try await harness.send(client, .get, "/v1/payout-runs/\(run1.id.uuidString.lowercased())/report.csv")
            #expect(report.status == .ok)
            let rows = report.text.split(separator: "\n").map(String.init)
            #expect(rows.first == "host_id,currency,bookings,gross,fees,refunds,fee_reversals,carried_in,net,status,payout_id,disputes,rounding")
            #expect(rows.count == 6)
            #expect(rows[1].hasPrefix("host_eur,EUR,3,60005,6001,30000,3000,0,27004,payout,"))
            #expect(rows[5] == "host_noacct,EUR,1,8000,800,0,0,0,7200,no_account,,0,0")
            let shown = try await harness.send(client, .get, "/v1/payout-runs/\(run1.id.uuidString.lowercased())")
            #expect(shown["status"] == "completed")
            #expect(shown["reconciliation"]?["ok"] == true)
            #expect(
                shown["totals"] == [
                    [
                        "currency": "EUR", "payouts": 3, "gross": 75_005, "fees": 7_376, "refunds": 30_000, "fee_reversals": 3_000, "disputes": 0,
                        "carried_in": 0, "rounding": 0, "net": 40_629,
                    ],
                    [
                        "currency": "JPY", "payouts": 1, "gross": 4_020, "fees": 302, "refunds": 0, "fee_reversals": 0, "disputes": 0,
                        "carried_in": 0, "rounding": 0, "net": 3_718,
                    ],
                ])
            // payout.created went to the outbox once per payout, with its items.
            #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'payout.created'") == 7)
            let announced = try await harness.postgres.query(
                """
                SELECT (envelope -> 'data' -> 'items')::text, (envelope -> 'data' ->> 'amount')::bigint FROM messaging.outbox
                WHERE event_type = 'payout.created' AND envelope -> 'data' ->> 'host_id' = 'host_eur' ORDER BY position LIMIT 1
                """)
            let summary = try JSONDecoder().decode(PayoutItemSummary.self, from: Data(try announced[0].decode(String.self, at: 0).utf8))
            #expect(summary == PayoutItemSummary(count: 10, bookings: 3, revenue: 60_005, fees: -6_001, refunds: -30_000, feeReversals: 3_000))
            #expect(summary.total == (try announced[0].decode(Int64.self, at: 1)))
            let payouts = try await harness.send(client, .get, "/v1/hosts/host_eur/payouts")
            #expect(payouts["payouts"]?.arrayValue?.count == 2)
            let newest = payouts["payouts"]?.arrayValue?.first
            #expect(newest?["amount"] == 40_500)
            #expect(newest?["items"]?.arrayValue?.count == 4)
        }
    }

    @Test("a refund that arrives before its booking's confirmation is entered with it; redelivery changes nothing")
    func reorderedRefund() async throws {
        let clock = TestClock(try instant("2026-11-10T09:00:00Z"))
        let harness = try await PayoutHarness.make(clock: clock)
        try await harness.run { _ in
            let booking = BookingID()
            let refund = try PayoutHarness.refunded(booking, amount: 4_000, at: try instant("2026-11-10T11:00:00Z"))
            let confirmed = try PayoutHarness.confirmed(
                booking, host: "host_x", amount: 10_000, confirmedAt: try instant("2026-11-10T10:00:00Z"), endsAt: try instant("2026-11-11T10:00:00Z")
            )
            try await harness.ledger([refund])
            #expect(try await harness.count("SELECT count(*) FROM payout.entries") == 0)
            try await harness.ledger([confirmed, refund, confirmed])
            let kinds = try await harness.postgres.query("SELECT kind || ' ' || amount FROM payout.entries ORDER BY id").map {
                try $0.decode(String.self, at: 0)
            }
            #expect(kinds == ["revenue 10000", "fee -1000", "refund -4000", "fee_reversal 400"])
        }
    }
}
