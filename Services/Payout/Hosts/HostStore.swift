import Foundation
import Messaging
import Postgres
import SharedModel

/// A host's payout settings.
struct Host: Sendable, Equatable {
    var hostID: String
    var payoutAccount: String
    /// Nil: the platform's fee.
    var feeBasisPoints: Int?
    var createdAt: Date
    var updatedAt: Date
}

/// A host's balance in one currency: what a run at this moment would pay (`payable`, may be negative)
/// and what is entered but not payable yet (`pending`: revenue and fees of events not yet settled;
/// `held`: entries of bookings with an open dispute, whatever their settlement).
struct Balance: Sendable, Equatable {
    var currency: String
    var payable: Int64
    var pending: Int64
    var held: Int64 = 0
}

/// `payout.hosts` and balances: the only SQL about hosts.
enum HostStore {
    /// Creates or replaces the host's payout settings; `audit`, when given, is written in the same
    /// transaction (outcome `created` or `updated`, the fee in its details; never the account).
    static func put(
        _ hostID: String, account: String, feeBasisPoints: Int?, now: Date, audit: AuditRecord? = nil, on postgres: PostgresClient
    ) async throws -> Host {
        let row = try await postgres.withTransaction { transaction in
            let row = try transaction.query(
                """
                INSERT INTO payout.hosts (host_id, payout_account, fee_bps, created_at, updated_at)
                VALUES (\(hostID), \(account), \(feeBasisPoints.map(Int32.init)), \(now), \(now))
                ON CONFLICT (host_id) DO UPDATE
                SET payout_account = EXCLUDED.payout_account, fee_bps = EXCLUDED.fee_bps, updated_at = EXCLUDED.updated_at
                RETURNING host_id, payout_account, fee_bps, created_at, updated_at, (xmax = 0) AS inserted
                """)[0]
            let inserted = try row.decode(Bool.self, at: 5)
            try AuditLog.record(
                audit?.with(
                    outcome: inserted ? "created" : "updated",
                    details: ["fee_bps": feeBasisPoints.map { .integer(Int64($0)) } ?? .null, "created": .bool(inserted)]),
                clock: .fixed(now), in: transaction)
            return row
        }
        return Host(
            hostID: try row.decode(String.self, at: 0), payoutAccount: try row.decode(String.self, at: 1),
            feeBasisPoints: try row.decode(Int32?.self, at: 2).map(Int.init), createdAt: try row.decode(Date.self, at: 3),
            updatedAt: try row.decode(Date.self, at: 4))
    }

    /// Whether the ledger or the settings know the host.
    static func exists(_ hostID: String, on postgres: PostgresClient) async throws -> Bool {
        try await postgres.query(
            """
            SELECT EXISTS (SELECT 1 FROM payout.hosts WHERE host_id = \(hostID)) OR EXISTS (SELECT 1 FROM payout.bookings WHERE host_id = \(hostID))
            """)[0].decode(Bool.self, at: 0)
    }

    /// The host's open entries per currency, split at `now` with the settlement delay: payable (what a
    /// run cut off now would take), pending, and held back by open disputes.
    static func balances(of hostID: String, now: Date, settlementDelay: Duration, on postgres: PostgresClient) async throws -> [Balance] {
        let settledBefore = now.subtracting(settlementDelay)
        return try await postgres.query(
            """
            SELECT currency, coalesce(sum(amount) FILTER (WHERE payable AND NOT is_held), 0)::bigint,
                   coalesce(sum(amount) FILTER (WHERE NOT payable AND NOT is_held), 0)::bigint,
                   coalesce(sum(amount) FILTER (WHERE is_held), 0)::bigint
            FROM (
                SELECT o.currency::text AS currency, e.amount,
                       e.occurred_at <= \(now) AND (e.event_ends_at IS NULL OR e.event_ends_at <= \(settledBefore)) AS payable,
                       NOT \(PayoutRunStore.notHeld) AS is_held
                FROM payout.open_entries o JOIN payout.entries e ON e.id = o.entry_id
                WHERE o.host_id = \(hostID)
            ) AS open
            GROUP BY currency ORDER BY currency
            """
        ).map {
            Balance(
                currency: try $0.decode(String.self, at: 0), payable: try $0.decode(Int64.self, at: 1), pending: try $0.decode(Int64.self, at: 2),
                held: try $0.decode(Int64.self, at: 3))
        }
    }
}
