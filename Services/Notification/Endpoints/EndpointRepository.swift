import Foundation
import Messaging
import Postgres
import SharedModel

/// `notification.endpoints` and `notification.endpoint_secrets`: the only SQL about endpoints.
struct EndpointRepository: Sendable {
    let postgres: PostgresClient

    static let columns: PostgresStatement = """
        SELECT id, url, description, event_types, rate_limit_per_s, status, disabled_reason, failing_since, created_at, updated_at
        FROM notification.endpoints
        """

    static func endpoint(_ row: PostgresRow) throws -> Endpoint {
        Endpoint(
            id: try row.decode(UUID.self, at: 0),
            url: try row.decode(String.self, at: 1),
            description: try row.decode(String?.self, at: 2),
            eventTypes: try row.decode([String].self, at: 3),
            rateLimitPerSecond: try row.decode(Int32?.self, at: 4).map(Int.init),
            status: EndpointStatus(rawValue: try row.decode(String.self, at: 5)) ?? .disabled,
            disabledReason: try row.decode(String?.self, at: 6),
            failingSince: try row.decode(Date?.self, at: 7),
            createdAt: try row.decode(Date.self, at: 8),
            updatedAt: try row.decode(Date.self, at: 9)
        )
    }

    /// Stores a new endpoint with its first (sealed) secret, and `audit` when given, in one transaction.
    func create(_ endpoint: Endpoint, sealedSecret: Data, audit: AuditRecord? = nil) async throws {
        try await postgres.withTransaction { transaction in
            try transaction.query(
                """
                INSERT INTO notification.endpoints
                    (id, url, description, event_types, rate_limit_per_s, status, created_at, updated_at)
                VALUES (\(endpoint.id), \(endpoint.url), \(endpoint.description), \(endpoint.eventTypes),
                        \(endpoint.rateLimitPerSecond.map(Int32.init)), \(endpoint.status.rawValue), \(endpoint.createdAt), \(endpoint.updatedAt))
                """)
            try transaction.query(
                """
                INSERT INTO notification.endpoint_secrets (endpoint_id, position, sealed, created_at)
                VALUES (\(endpoint.id), 1, \(sealedSecret), \(endpoint.createdAt))
                """)
            try AuditLog.record(audit, in: transaction)
        }
    }

    func endpoint(_ id: UUID) async throws -> Endpoint? {
        try await postgres.sharedQuery(Self.columns + " WHERE id = \(id)").first.map(Self.endpoint)
    }

    /// Newest first.
    func list(after cursor: ListCursor?, limit: Int) async throws -> (rows: [Endpoint], nextCursor: String?) {
        let query = NewestFirstQuery(select: Self.columns, timeColumn: "created_at")
        return try await query.page(
            on: postgres, after: cursor, limit: limit, decode: Self.endpoint, position: { ListCursor(createdAt: $0.createdAt, id: $0.id) })
    }

    /// Writes the endpoint's editable fields (and `audit`, when given and the endpoint exists, in the
    /// same transaction); nil when it does not exist.
    func update(_ endpoint: Endpoint, audit: AuditRecord? = nil) async throws -> Endpoint? {
        try await Self.audited(audit, on: postgres) { transaction in
            try transaction.query(
                """
                UPDATE notification.endpoints
                SET url = \(endpoint.url), description = \(endpoint.description), event_types = \(endpoint.eventTypes),
                    rate_limit_per_s = \(endpoint.rateLimitPerSecond.map(Int32.init)), updated_at = \(endpoint.updatedAt)
                WHERE id = \(endpoint.id)
                RETURNING id, url, description, event_types, rate_limit_per_s, status, disabled_reason, failing_since, created_at, updated_at
                """
            ).first.map(Self.endpoint)
        }
    }

    /// Runs `body` in a transaction and writes `audit` in it when `body` found its row (non-nil).
    static func audited<Value: Sendable>(
        _ audit: AuditRecord?, on postgres: PostgresClient, _ body: @escaping @Sendable (PostgresTransaction) throws -> Value?
    ) async throws -> Value? {
        try await postgres.withTransaction { transaction in
            guard let value = try body(transaction) else { return nil }
            try AuditLog.record(audit, in: transaction)
            return value
        }
    }

    /// Pause, or resume (which also re-enables a disabled endpoint and forgets its failures); `audit`
    /// is written in the same transaction when the endpoint exists.
    func setStatus(_ id: UUID, to status: EndpointStatus, at now: Date, audit: AuditRecord? = nil) async throws -> Endpoint? {
        let statement: PostgresStatement =
            status == .enabled
            ? """
            UPDATE notification.endpoints SET status = 'enabled', disabled_reason = NULL, failing_since = NULL, updated_at = \(now)
            WHERE id = \(id)
            """
            : "UPDATE notification.endpoints SET status = \(status.rawValue), updated_at = \(now) WHERE id = \(id)"
        return try await Self.audited(audit, on: postgres) { transaction in
            try transaction.query(
                statement
                    + " RETURNING id, url, description, event_types, rate_limit_per_s, status, disabled_reason, failing_since, created_at, updated_at"
            ).first.map(Self.endpoint)
        }
    }

    /// Adds a new secret and lets every older one that is still active expire at `previousExpireAt`
    /// (never later than it already would). False when the endpoint does not exist.
    func rotate(_ id: UUID, sealedSecret: Data, previousExpireAt: Date, at now: Date, audit: AuditRecord? = nil) async throws -> Bool {
        try await postgres.withTransaction { transaction in
            let locked = try transaction.query("SELECT 1 FROM notification.endpoints WHERE id = \(id) FOR UPDATE")
            guard !locked.isEmpty else { return false }
            try transaction.query(
                """
                UPDATE notification.endpoint_secrets SET expires_at = \(previousExpireAt)
                WHERE endpoint_id = \(id) AND (expires_at IS NULL OR expires_at > \(previousExpireAt))
                """)
            // Expired secrets serve no one: keep the table to the signing ones and the new one.
            try transaction.query("DELETE FROM notification.endpoint_secrets WHERE endpoint_id = \(id) AND expires_at <= \(now)")
            try transaction.query(
                """
                INSERT INTO notification.endpoint_secrets (endpoint_id, position, sealed, created_at)
                SELECT \(id), coalesce(max(position), 0) + 1, \(sealedSecret), \(now) FROM notification.endpoint_secrets WHERE endpoint_id = \(id)
                """)
            try transaction.query("UPDATE notification.endpoints SET updated_at = \(now) WHERE id = \(id)")
            try AuditLog.record(audit, in: transaction)
            return true
        }
    }

    /// Deletes the endpoint with its secrets, deliveries and attempts (and writes `audit` in the same
    /// transaction); false when it did not exist.
    func delete(_ id: UUID, audit: AuditRecord? = nil) async throws -> Bool {
        try await Self.audited(audit, on: postgres) { transaction in
            try transaction.query("DELETE FROM notification.endpoints WHERE id = \(id) RETURNING 1").isEmpty ? nil : true
        } ?? false
    }
}
