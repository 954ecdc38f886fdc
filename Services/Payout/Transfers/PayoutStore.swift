import Foundation
import Messaging
import Postgres
import SharedModel

/// A payout as the API shows it, with the entries it covers.
struct PayoutView: Sendable {
    var id: UUID
    var runID: UUID
    var hostID: String
    var amount: Int64
    var currency: String
    var destination: String
    var status: String
    var providerRef: String?
    var error: String?
    var createdAt: Date
    var paidAt: Date?
    var failedAt: Date?
    var items: [PayoutItem] = []
}

/// A payout's state: `pending` (created by a run), `paid` or `failed`.
enum PayoutStatus: String, Sendable, CaseIterable {
    case pending, paid, failed
}

/// `payout.payouts` and their items outside a run: transfers and reads.
enum PayoutStore {
    /// A payout's status and destination, for its transfer.
    static func transferState(of id: UUID, in transaction: PostgresTransaction) throws -> (status: String, destination: String)? {
        try transaction.query("SELECT status, destination FROM payout.payouts WHERE id = \(id)").first.map {
            (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1))
        }
    }

    /// `pending` -> `paid`; false when it was not pending.
    static func markPaid(_ id: UUID, reference: String, at now: Date, in transaction: PostgresTransaction) throws -> Bool {
        try !transaction.query(
            """
            UPDATE payout.payouts SET status = 'paid', provider_ref = \(reference), paid_at = \(now)
            WHERE id = \(id) AND status = 'pending' RETURNING 1
            """
        ).isEmpty
    }

    /// `pending` -> `failed`, its items released and its entries open again; false when it was not pending.
    static func markFailed(_ id: UUID, error: String, at now: Date, in transaction: PostgresTransaction) throws -> Bool {
        guard
            try !transaction.query(
                """
                UPDATE payout.payouts SET status = 'failed', error = \(error), failed_at = \(now)
                WHERE id = \(id) AND status = 'pending' RETURNING 1
                """
            ).isEmpty
        else { return false }
        try PayoutRunStore.release(payoutsOf: "SELECT \(id)::uuid", in: transaction)
        return true
    }

    static let columns: PostgresStatement = """
        SELECT id, run_id, host_id, amount, currency, destination, status, provider_ref, error, created_at, paid_at, failed_at
        FROM payout.payouts
        """

    static func payout(_ row: PostgresRow) throws -> PayoutView {
        PayoutView(
            id: try row.decode(UUID.self, at: 0), runID: try row.decode(UUID.self, at: 1), hostID: try row.decode(String.self, at: 2),
            amount: try row.decode(Int64.self, at: 3), currency: try row.decode(String.self, at: 4), destination: try row.decode(String.self, at: 5),
            status: try row.decode(String.self, at: 6), providerRef: try row.decode(String?.self, at: 7), error: try row.decode(String?.self, at: 8),
            createdAt: try row.decode(Date.self, at: 9), paidAt: try row.decode(Date?.self, at: 10), failedAt: try row.decode(Date?.self, at: 11))
    }

    /// Payouts newest first, each with its items: one host's, one run's, those in one status, or any
    /// combination (nil: any).
    static func payouts(
        host hostID: String? = nil, run runID: UUID? = nil, status: PayoutStatus? = nil, after cursor: ListCursor?, limit: Int,
        on postgres: PostgresClient
    ) async throws -> (
        rows: [PayoutView], nextCursor: String?
    ) {
        var query = NewestFirstQuery(select: columns, timeColumn: "created_at")
        query.equal("host_id", hostID)
        query.equal("run_id", runID)
        query.equal("status", status?.rawValue)
        var page = try await query.page(
            on: postgres, after: cursor, limit: limit, decode: Self.payout, position: { ListCursor(createdAt: $0.createdAt, id: $0.id) })
        let ids = page.rows.map(\.id)
        guard !ids.isEmpty else { return page }
        let items = try await postgres.withTransaction(readOnly: true) { transaction in
            try PayoutRunStore.items(of: "SELECT unnest(\(ids)::uuid[])", in: transaction)
        }
        for index in page.rows.indices { page.rows[index].items = items[page.rows[index].id] ?? [] }
        return page
    }

    /// One payout with its items.
    static func payout(_ id: UUID, on postgres: PostgresClient) async throws -> PayoutView? {
        try await postgres.withTransaction(readOnly: true) { transaction in
            guard var payout = try transaction.query(columns + " WHERE id = \(id)").first.map(Self.payout) else { return nil }
            payout.items = try PayoutRunStore.items(of: "SELECT \(id)::uuid", in: transaction)[id] ?? []
            return payout
        }
    }
}
