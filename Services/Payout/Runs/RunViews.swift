import Foundation
import Messaging
import Postgres

/// Reads of runs for the API: the list, one run's totals, its report lines.
enum RunViews {
    static func list(after cursor: ListCursor?, limit: Int, on postgres: PostgresClient) async throws -> (rows: [PayoutRun], nextCursor: String?) {
        try await NewestFirstQuery(select: PayoutRunStore.columns, timeColumn: "created_at").page(
            on: postgres, after: cursor, limit: limit, decode: PayoutRunStore.run, position: { ListCursor(createdAt: $0.createdAt, id: $0.id) })
    }

    static func run(_ id: UUID, on postgres: PostgresClient) async throws -> PayoutRun? {
        try await postgres.sharedQuery(PayoutRunStore.columns + " WHERE id = \(id)").first.map(PayoutRunStore.run)
    }

    /// Per currency, what the run pays: its payout lines summed (a failed run pays nothing: no totals).
    static func totals(of runID: UUID, on postgres: PostgresClient) async throws -> [RunTotal] {
        try await postgres.query(
            """
            SELECT l.currency::text, count(*), sum(l.gross)::bigint, sum(l.fees)::bigint, sum(l.refunds)::bigint, sum(l.fee_reversals)::bigint,
                   sum(l.carried_in)::bigint, sum(l.net)::bigint, sum(l.disputes)::bigint, sum(l.rounding)::bigint
            FROM payout.run_lines l JOIN payout.runs r ON r.id = l.run_id
            WHERE l.run_id = \(runID) AND l.status = 'payout' AND r.status <> 'failed'
            GROUP BY l.currency ORDER BY l.currency
            """
        ).map { row in
            RunTotal(
                currency: try row.decode(String.self, at: 0), payouts: Int(try row.decode(Int64.self, at: 1)),
                gross: try row.decode(Int64.self, at: 2),
                fees: try row.decode(Int64.self, at: 3), refunds: try row.decode(Int64.self, at: 4), feeReversals: try row.decode(Int64.self, at: 5),
                disputes: try row.decode(Int64.self, at: 8), carriedIn: try row.decode(Int64.self, at: 6),
                rounding: try row.decode(Int64.self, at: 9),
                net: try row.decode(Int64.self, at: 7))
        }
    }

    /// The run's report lines in host and currency order, `pageSize` at a time, handed to `body` (so a
    /// report of any size is never held whole).
    static func lines(of runID: UUID, pageSize: Int = 2_000, on postgres: PostgresClient, _ body: ([RunLine]) async throws -> Void) async throws {
        var after: (host: String, currency: String) = ("", "")
        var first = true
        while true {
            let position: PostgresStatement = first ? "true" : "(host_id, currency) > (\(after.host), \(after.currency)::char(3))"
            let page = try await postgres.query(
                """
                SELECT host_id, currency::text, bookings, gross, fees, refunds, fee_reversals, carried_in, net, status, payout_id, disputes,
                       rounding
                FROM payout.run_lines WHERE run_id = \(runID) AND \(position)
                ORDER BY host_id, currency LIMIT \(pageSize)
                """
            ).map { row in
                RunLine(
                    hostID: try row.decode(String.self, at: 0), currency: try row.decode(String.self, at: 1),
                    bookings: Int(try row.decode(Int32.self, at: 2)), gross: try row.decode(Int64.self, at: 3),
                    fees: try row.decode(Int64.self, at: 4),
                    refunds: try row.decode(Int64.self, at: 5), feeReversals: try row.decode(Int64.self, at: 6),
                    disputes: try row.decode(Int64.self, at: 11), carriedIn: try row.decode(Int64.self, at: 7),
                    rounding: try row.decode(Int64.self, at: 12), net: try row.decode(Int64.self, at: 8), status: try row.decode(String.self, at: 9),
                    payoutID: try row.decode(UUID?.self, at: 10))
            }
            guard let last = page.last else { return }
            try await body(page)
            if page.count < pageSize { return }
            after = (last.hostID, last.currency)
            first = false
        }
    }
}

/// The report as CSV: DESIGN.md's columns, then `disputes` (the debits of lost disputes) and `rounding`
/// (the rest below the provider's step held back to the next run), added at the end so readers of the
/// original columns keep working: `net = gross - fees - refunds + fee_reversals - disputes +
/// carried_in - rounding`.
enum RunReport {
    static let header = "host_id,currency,bookings,gross,fees,refunds,fee_reversals,carried_in,net,status,payout_id,disputes,rounding\n"

    static func csv(_ line: RunLine) -> String {
        [
            field(line.hostID), line.currency, String(line.bookings), String(line.gross), String(line.fees), String(line.refunds),
            String(line.feeReversals), String(line.carriedIn), String(line.net), line.status, line.payoutID?.lowercasedString ?? "",
            String(line.disputes), String(line.rounding),
        ].joined(separator: ",") + "\n"
    }

    /// RFC 4180 quoting when the text needs it; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a
    /// spreadsheet never evaluates a host id as a formula.
    static func field(_ text: String) -> String {
        var text = text
        if let first = text.first, "=+-@".contains(first) { text = "'" + text }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
