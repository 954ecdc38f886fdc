import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import Postgres
import SharedModel
import Testing

@testable import Payout

/// Balances the provider cannot transfer whole: three-decimal currencies move in steps of 10, MGA in
/// whole ariary. A run pays the balance rounded down to the step and carries the rest.
@Suite("Payout: a balance is paid rounded down to the provider's step, and the rest is carried to the next run")
struct PayoutRoundingTests {

    /// Puts `host` with an account and no platform fee, so its balance is its bookings' amounts.
    static func feeFreeHost(_ host: String, _ harness: PayoutHarness, _ client: any TestClientProtocol) async throws {
        let put = try await harness.send(
            client, .put, "/v1/hosts/\(host)", body: ["payout_account": .string("acct_\(host.filter { $0 != "_" })"), "fee_bps": 0])
        #expect(put.status == .ok)
    }

    /// The run's report lines as `host currency carried_in rounding net status`.
    static func lines(of runID: UUID, _ harness: PayoutHarness) async throws -> [String] {
        try await harness.postgres.query(
            """
            SELECT host_id || ' ' || currency || ' ' || carried_in || ' ' || rounding || ' ' || net || ' ' || status
            FROM payout.run_lines WHERE run_id = \(runID) ORDER BY host_id, currency
            """
        ).map { try $0.decode(String.self, at: 0) }
    }

    static func payoutID(of runID: UUID, host: String, _ harness: PayoutHarness) async throws -> String {
        let rows = try await harness.postgres.query("SELECT id FROM payout.payouts WHERE run_id = \(runID) AND host_id = \(host)")
        return try #require(rows.first).decode(UUID.self, at: 0).lowercasedString
    }

    @Test(
        "10.005 KWD is paid as 10.000 and the 5 fils carried; 7 fils are carried whole; MGA is paid in whole ariary; EUR is paid to the cent; the next run pays the carried rest"
    )
    func roundsDownAndCarries() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        let (kwd, mga) = (try Currency("KWD"), try Currency("MGA"))
        try await harness.run { client in
            for host in ["host_k", "host_small", "host_m", "host_e"] { try await Self.feeFreeHost(host, harness, client) }
            let at = try instant("2026-11-10T10:00:00Z")
            try await harness.ledger([
                try PayoutHarness.confirmed(host: "host_k", amount: 10_005, currency: kwd, confirmedAt: at, endsAt: at),
                try PayoutHarness.confirmed(host: "host_small", amount: 7, currency: kwd, confirmedAt: at, endsAt: at),
                try PayoutHarness.confirmed(host: "host_m", amount: 123_456, currency: mga, confirmedAt: at, endsAt: at),
                try PayoutHarness.confirmed(host: "host_e", amount: 1_001, currency: .eur, confirmedAt: at, endsAt: at),
            ])

            let first = try await harness.runPayout("2026-11-20")
            #expect(first.status == .completed, "mismatches: \(first.mismatches)")
            #expect(
                try await harness.payouts(of: first.id) == ["host_e EUR 1001", "host_k KWD 10000", "host_m MGA 123400"])
            #expect(
                try await Self.lines(of: first.id, harness) == [
                    "host_e EUR 0 0 1001 payout", "host_k KWD 0 5 10000 payout", "host_m MGA 0 56 123400 payout",
                    "host_small KWD 0 0 7 carried",
                ])
            // Every payout is an amount the provider's rules take.
            for row in try await harness.postgres.query("SELECT amount, currency::text FROM payout.payouts WHERE run_id = \(first.id)") {
                let money = Money(amount: try row.decode(Int64.self, at: 0), currency: try Currency(try row.decode(String.self, at: 1)))
                #expect(TransferProvider.rules.problem(transferring: money) == nil, "\(money)")
            }

            // The payout's items: the booking's revenue and the rest held back, which belongs to no booking.
            let payoutID = try await Self.payoutID(of: first.id, host: "host_k", harness)
            let payout = try await harness.send(client, .get, "/v1/payouts/\(payoutID)")
            #expect(payout.status == .ok)
            let items = payout["items"]?.arrayValue ?? []
            #expect(items.map { $0["kind"]?.stringValue ?? "?" } == ["revenue", "rounding"])
            #expect(items.map { $0["amount"] } == [10_005, -5])
            #expect(items.last?["booking_id"] == .null)
            // Its payout.created carries the rest in the item summary.
            let envelopes = try await harness.postgres.query(
                "SELECT envelope::text FROM messaging.outbox WHERE event_type = 'payout.created' AND envelope->'data'->>'host_id' = 'host_k'")
            let envelope = try JSONDecoder().decode(JSONValue.self, from: Data(try #require(envelopes.first).decode(String.self, at: 0).utf8))
            #expect(envelope["data"]?["items"]?["rounding"] == -5)
            #expect(envelope["data"]?["items"]?["count"] == 2)

            // The report and the run's totals show the rest apart.
            let report = try await harness.send(client, .get, "/v1/payout-runs/\(first.id.lowercasedString)/report.csv")
            #expect(
                report.text.hasPrefix(
                    "host_id,currency,bookings,gross,fees,refunds,fee_reversals,carried_in,net,status,payout_id,disputes,rounding\n"))
            #expect(report.text.contains("\nhost_k,KWD,1,10005,0,0,0,0,10000,payout,\(payoutID),0,5\n"))
            #expect(report.text.contains("\nhost_small,KWD,1,7,0,0,0,0,7,carried,,0,0\n"))
            let shown = try await harness.send(client, .get, "/v1/payout-runs/\(first.id.lowercasedString)")
            let kwdTotal = shown["totals"]?.arrayValue?.first { $0["currency"] == "KWD" }
            #expect(kwdTotal?["rounding"] == 5 && kwdTotal?["net"] == 10_000)

            // The rest is the host's payable balance until the next run.
            #expect(
                try await harness.send(client, .get, "/v1/hosts/host_k/balance")["balances"] == [
                    ["currency": "KWD", "payable": 5, "pending": 0, "held": 0]
                ])
            #expect(
                try await harness.count(
                    "SELECT count(*) FROM payout.open_entries o JOIN payout.entries e ON e.id = o.entry_id WHERE e.kind = 'rounding_carried'") == 2)

            // The next run: host_k's carried 5 and a new 2.003 KWD: 2.008, paid as 2.000, 8 carried.
            let later = try instant("2026-11-21T09:00:00Z")
            try await harness.ledger([
                try PayoutHarness.confirmed(host: "host_k", amount: 2_003, currency: kwd, confirmedAt: later, endsAt: later)
            ])
            harness.clock.set(try instant("2026-11-25T06:00:00Z"))
            let second = try await harness.runPayout("2026-11-24")
            #expect(second.status == .completed, "mismatches: \(second.mismatches)")
            // host_m's carried 56 is below one ariary (100) and host_small's 7 below 10 fils: carried whole.
            #expect(try await harness.payouts(of: second.id) == ["host_k KWD 2000"])
            #expect(
                try await Self.lines(of: second.id, harness) == [
                    "host_k KWD 5 8 2000 payout", "host_m MGA 56 0 56 carried", "host_small KWD 7 0 7 carried",
                ])
            let secondID = try await Self.payoutID(of: second.id, host: "host_k", harness)
            let secondItems = try await harness.send(client, .get, "/v1/payouts/\(secondID)")["items"]?.arrayValue ?? []
            #expect(secondItems.map { $0["kind"]?.stringValue ?? "?" }.sorted() == ["revenue", "rounding", "rounding_carried"])
            #expect(secondItems.compactMap { $0["amount"]?.integerValue }.reduce(0, +) == 2_000)
            #expect(
                try await harness.send(client, .get, "/v1/hosts/host_k/balance")["balances"] == [
                    ["currency": "KWD", "payable": 8, "pending": 0, "held": 0]
                ])
        }
    }
}
