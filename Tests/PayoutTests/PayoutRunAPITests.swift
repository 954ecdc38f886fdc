import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import SharedModel
import Testing

@testable import Payout

@Suite("Payout runs: reconciliation, the same date again, and the API's answers to bad input")
struct PayoutRunAPITests {
    @Test("a mismatch injected between computing and reconciling fails the run loudly and pays nothing; the next run pays")
    func reconciliationMismatch() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            try await harness.twoSettledHosts(client)
            let failed = try await harness.runPayoutWithMismatch("2026-11-20")
            #expect(failed.status == .failed)
            #expect(failed.mismatches.map(\.check).sorted() == ["currency_total", "line_amount", "payout_amount", "payout_summary"])
            #expect(failed.mismatches.contains { $0.detail.contains("9001") })
            // Nothing was announced, so nothing is transferred; every payout failed; the entries are open again.
            #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE event_type LIKE 'payout.%'") == 0)
            #expect(try await harness.count("SELECT count(*) FROM payout.payouts WHERE status <> 'failed'") == 0)
            #expect(try await harness.count("SELECT count(*) FROM payout.open_entries") == 4)
            let shown = try await harness.send(client, .get, "/v1/payout-runs/\(failed.id.uuidString.lowercased())")
            #expect(shown["status"] == "failed")
            #expect(shown["reconciliation"]?["ok"] == false)
            #expect(shown["reconciliation"]?["mismatches"]?.arrayValue?.count == 4)
            #expect(shown["totals"] == [])
            // The same date again returns the failed run and does nothing; the next date pays.
            let again = try await harness.send(client, .post, "/v1/payout-runs", body: ["run_date": "2026-11-20"])
            #expect(again.status == .ok)
            #expect(again["status"] == "failed")
            harness.clock.set(try instant("2026-11-22T06:00:00Z"))
            let next = try await harness.runPayout("2026-11-21")
            #expect(next.status == .completed)
            #expect(try await harness.payouts(of: next.id) == ["host_a EUR 9000", "host_b EUR 18000"])
        }
    }

    @Test("an item moved to another host's payout, or naming an entry that does not exist, fails reconciliation with the checks it breaks")
    func reconciliationItemMismatches() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            try await harness.twoSettledHosts(client)
            let postgres = harness.postgres
            // host_a's fee entry (-1,000) moved into host_b's payout: both payouts are off by it, both
            // summaries count the wrong items, host_b covers an entry of another host; the totals still agree.
            let moved = try await harness.runPayout("2026-11-20") { runID in
                try await postgres.query(
                    """
                    UPDATE payout.payout_items SET payout_id = (SELECT id FROM payout.payouts WHERE run_id = \(runID) AND host_id = 'host_b')
                    WHERE entry_id = (SELECT id FROM payout.entries WHERE host_id = 'host_a' AND kind = 'fee')
                    """)
            }
            #expect(moved.status == .failed)
            #expect(
                moved.mismatches.map(\.check).sorted() == ["item_owner", "payout_amount", "payout_amount", "payout_summary", "payout_summary"])
            #expect(moved.mismatches.contains { $0.check == "item_owner" && $0.detail.contains("host_b") && $0.detail.contains("covers 1 entries") })
            // An item naming no entry: host_a's items add up to 10,000 against its 9,000, the entry is
            // missing, and the run consumed 28,000 of ledger movements for 27,000 paid.
            harness.clock.set(try instant("2026-11-22T06:00:00Z"))
            let missing = try await harness.runPayout("2026-11-21") { runID in
                try await postgres.query(
                    """
                    UPDATE payout.payout_items SET entry_id = -1
                    WHERE payout_id = (SELECT id FROM payout.payouts WHERE run_id = \(runID) AND host_id = 'host_a')
                      AND entry_id = (SELECT id FROM payout.entries WHERE host_id = 'host_a' AND kind = 'fee')
                    """)
            }
            #expect(missing.status == .failed)
            #expect(missing.mismatches.map(\.check).sorted() == ["currency_total", "item_owner", "payout_amount"])
            #expect(missing.mismatches.contains { $0.check == "currency_total" && $0.detail.contains("consumed 28000") })
            #expect(try await harness.count("SELECT count(*) FROM payout.payouts WHERE status <> 'failed'") == 0)
        }
    }

    @Test("an entry in a payout that did not fail, released anyway, and paid again: entry_in_two_payouts; after that payout failed, none")
    func entryInTwoPayouts() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            try await harness.twoSettledHosts(client)
            let postgres = harness.postgres
            let first = try await harness.runPayout("2026-11-20")
            #expect(first.status == .completed)
            let entries = try await harness.count("SELECT count(*) FROM payout.payout_items")
            #expect(entries > 0)
            // host_a's payout did not fail, but its items are released and their entries open again (a
            // drift no constraint prevents): the next run pays them a second time.
            try await postgres.query(
                """
                WITH released AS (
                    UPDATE payout.payout_items SET released = true
                    WHERE payout_id = (SELECT id FROM payout.payouts WHERE run_id = \(first.id) AND host_id = 'host_a') RETURNING entry_id
                )
                INSERT INTO payout.open_entries (entry_id, host_id, currency)
                SELECT e.id, e.host_id, e.currency FROM released r JOIN payout.entries e ON e.id = r.entry_id
                """)
            let reopened = try await harness.count("SELECT count(*) FROM payout.payout_items WHERE released")
            #expect(reopened > 0 && reopened < entries)
            harness.clock.set(try instant("2026-11-22T06:00:00Z"))
            let second = try await harness.runPayout("2026-11-21")
            #expect(second.status == .failed)
            #expect(second.mismatches.count == reopened)
            #expect(second.mismatches.allSatisfy { $0.check == "entry_in_two_payouts" })
            let firstPayout = try await harness.postgres.query(
                "SELECT id FROM payout.payouts WHERE run_id = \(first.id) AND host_id = 'host_a'"
            ).map { try $0.decode(UUID.self, at: 0) }
            #expect(second.mismatches.allSatisfy { $0.detail.contains(firstPayout.first?.uuidString.lowercased() ?? "?") })

            // Once that payout failed, as a refused transfer fails it, its released items are history:
            // the entries are paid again and the run reconciles.
            try await postgres.query(
                "UPDATE payout.payouts SET status = 'failed', failed_at = now(), error = 'refused' WHERE run_id = \(first.id) AND host_id = 'host_a'")
            harness.clock.set(try instant("2026-11-23T06:00:00Z"))
            let third = try await harness.runPayout("2026-11-22")
            #expect(third.status == .completed, "\(third.mismatches)")
            #expect(third.mismatches.isEmpty)
        }
    }

    @Test("the same date again returns the same run (200) and changes nothing")
    func sameDateTwice() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            try await harness.twoSettledHosts(client)
            let first = try await harness.send(client, .post, "/v1/payout-runs", body: ["run_date": "2026-11-20"])
            #expect(first.status == .accepted)
            #expect(first["cutoff"] == "2026-11-21T00:00:00.000Z")
            guard let id = first["run_id"]?.stringValue.flatMap(UUID.init(uuidString:)) else {
                Issue.record("no run id: \(first.text)")
                return
            }
            // The API hands the run to the executor, which this in-process harness does not run: finish it here.
            _ = try await harness.parts.runner.finish(id, waiting: true)
            let second = try await harness.send(client, .post, "/v1/payout-runs", body: ["run_date": "2026-11-20"])
            #expect(second.status == .ok)
            #expect(second["run_id"] == first["run_id"])
            #expect(second["status"] == "completed")
            _ = try await harness.runPayout("2026-11-20")
            #expect(try await harness.count("SELECT count(*) FROM payout.payouts") == 2)
            #expect(try await harness.count("SELECT count(*) FROM payout.runs") == 1)
            let list = try await harness.send(client, .get, "/v1/payout-runs")
            #expect(list["runs"]?.arrayValue?.count == 1)
            #expect(list["next_cursor"] == .null)
        }
    }

    @Test("payouts across hosts: newest first, by status, run and host, a page at a time; a bad status or run id is 400")
    func payoutsAcrossHosts() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            try await harness.twoSettledHosts(client)
            let run = try await harness.runPayout("2026-11-20")
            let failedID = try #require(
                try await harness.postgres.query("SELECT id FROM payout.payouts WHERE host_id = 'host_b'").first?.decode(UUID.self, at: 0))
            let failed = try await harness.parts.app.postgres.withTransaction { transaction in
                try PayoutStore.markFailed(failedID, error: "400 transfer_refused: closed account", at: harness.clock.now, in: transaction)
            }
            #expect(failed)

            let all = try await harness.send(client, .get, "/v1/payouts")
            #expect(all.status == .ok)
            #expect(Set((all["payouts"]?.arrayValue ?? []).compactMap { $0["host_id"]?.stringValue }) == ["host_a", "host_b"])
            let onlyFailed = try await harness.send(client, .get, "/v1/payouts?status=failed")
            #expect(onlyFailed["payouts"]?.arrayValue?.map { $0["payout_id"]?.stringValue } == [failedID.lowercasedString])
            #expect(onlyFailed["payouts"]?.arrayValue?.first?["error"] == "400 transfer_refused: closed account")
            #expect(onlyFailed["payouts"]?.arrayValue?.first?["items"]?.arrayValue?.isEmpty == false)
            #expect(try await harness.send(client, .get, "/v1/payouts?status=paid")["payouts"] == [])
            let ofRun = try await harness.send(client, .get, "/v1/payouts?run_id=\(run.id.lowercasedString)&host_id=host_a")
            #expect(ofRun["payouts"]?.arrayValue?.map { $0["host_id"] } == ["host_a"])
            #expect(try await harness.send(client, .get, "/v1/payouts?run_id=\(UUID().lowercasedString)")["payouts"] == [])

            // One at a time: two pages, each payout once, then no cursor.
            let first = try await harness.send(client, .get, "/v1/payouts?limit=1")
            let cursor = try #require(first["next_cursor"]?.stringValue)
            let second = try await harness.send(client, .get, "/v1/payouts?limit=1&cursor=\(cursor)")
            #expect(second["next_cursor"] == .null)
            let paged = [first, second].flatMap { $0["payouts"]?.arrayValue ?? [] }.compactMap { $0["payout_id"]?.stringValue }
            #expect(Set(paged).count == 2)

            for (query, parameter) in [("status=lost", "status"), ("run_id=nope", "run_id"), ("limit=0", "limit")] {
                let refused = try await harness.send(client, .get, "/v1/payouts?\(query)")
                #expect(refused.status == .badRequest, "\(query)")
                #expect(refused.text.contains(parameter), "\(query): \(refused.text)")
            }
        }
    }

    @Test("bad input: future and impossible dates 422, malformed JSON 400, unknown ids 404, no route without the admin token")
    func badInput() async throws {
        let harness = try await PayoutHarness.make(clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        try await harness.run { client in
            for date in ["2026-11-22", "2027-01-01", "2026-02-30", "2026-13-01", "20261120", "2026-1-20", "yesterday", "٢٠٢٦-١١-٢٠"] {
                let answer = try await harness.send(client, .post, "/v1/payout-runs", body: ["run_date": .string(date)])
                #expect(answer.status == .unprocessableContent, "\(date): \(answer.text)")
                #expect(answer.errorCode == "validation_failed")
            }
            #expect(try await harness.send(client, .post, "/v1/payout-runs", raw: "{").status == .badRequest)
            #expect(try await harness.send(client, .post, "/v1/payout-runs", body: ["run_date": 20_261_120]).status == .badRequest)
            #expect(try await harness.count("SELECT count(*) FROM payout.runs") == 0)

            let unknown = UUID().uuidString.lowercased()
            for path in [
                "/v1/payout-runs/\(unknown)", "/v1/payout-runs/\(unknown)/report.csv", "/v1/payout-runs/not-a-uuid", "/v1/payouts/\(unknown)",
                "/v1/hosts/nobody/balance", "/v1/hosts/nobody/payouts",
            ] {
                let answer = try await harness.send(client, .get, path)
                #expect(answer.status == .notFound, "\(path): \(answer.text)")
                #expect(answer.errorCode == "not_found")
            }
            for body: JSONValue in [
                ["payout_account": "acct_"], ["payout_account": "bank_123"], ["payout_account": "acct_12-3"],
                ["payout_account": .string("acct_" + String(repeating: "a", count: 256))], ["payout_account": "acct_1", "fee_bps": 10_001],
                ["payout_account": "acct_1", "fee_bps": -1],
            ] {
                let answer = try await harness.send(client, .put, "/v1/hosts/host_a", body: body)
                #expect(answer.status == .unprocessableContent, "\(body): \(answer.text)")
            }
            #expect(try await harness.send(client, .put, "/v1/hosts/host_a", body: ["fee_bps": 10]).status == .badRequest)
            #expect(try await harness.count("SELECT count(*) FROM payout.hosts") == 0)
            let put = try await harness.send(client, .put, "/v1/hosts/host%20a", body: ["payout_account": "acct_A1", "fee_bps": 250])
            #expect(put.status == .ok)
            #expect(put["host_id"] == "host a" && put["fee_bps"] == 250)
            #expect(try await harness.send(client, .get, "/v1/hosts/host%20a/balance")["balances"] == [])

            for (method, path) in [
                (HTTPRequest.Method.post, "/v1/payout-runs"), (.get, "/v1/payout-runs"), (.get, "/v1/payout-runs/\(unknown)/report.csv"),
                (.put, "/v1/hosts/host_a"), (.get, "/v1/hosts/host_a/balance"), (.get, "/v1/hosts/host_a/payouts"), (.get, "/v1/payouts/\(unknown)"),
                (.get, "/v1/payouts?status=failed"),
            ] {
                for token in [nil, "wrong-token"] as [String?] {
                    let answer = try await harness.send(client, method, path, body: ["payout_account": "acct_x1"], token: token)
                    #expect(answer.status == .unauthorized, "\(method) \(path) with \(token ?? "no token"): \(answer.text)")
                }
            }
            #expect(try await harness.count("SELECT count(*) FROM payout.runs") == 0)
        }
    }
}
