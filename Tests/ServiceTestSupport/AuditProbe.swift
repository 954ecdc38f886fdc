import Foundation
import Postgres

/// Reads `platform.audit_log` as stored, for the audit tests of every service.
public enum AuditProbe {
    /// The stored rows (optionally only those of `action`), oldest first, each as the JSON text of the
    /// whole row (`row_to_json`), so a test can check a field or that a secret appears nowhere.
    public static func rows(_ postgres: PostgresClient, action: String? = nil) async throws -> [String] {
        var statement: PostgresStatement = "SELECT row_to_json(a)::text FROM platform.audit_log a"
        if let action { statement.append(" WHERE action = \(action)") }
        statement.append(" ORDER BY occurred_at, id")
        return try await postgres.query(statement).map { try $0.decode(String.self, at: 0) }
    }
}
