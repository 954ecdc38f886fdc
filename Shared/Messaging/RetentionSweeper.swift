import Foundation
import Logging
import Metrics
import Postgres
import ServiceLifecycle

/// One kind of row deleted once it is older than its retention.
public struct RetentionRule: Sendable {
    /// What the rule deletes, as logs and `retention_purged_total{table}` name it, e.g. `messaging.inbox`.
    public let table: String
    public let retention: Duration
    /// A `DELETE` of at most `$2` rows older than the cutoff `$1` (and, when `values` is given, matching
    /// the text array `$3`), returning nothing in particular: its affected row count is what counts.
    let deleteBatch: String
    let values: [String]?

    public init(table: String, retention: Duration, deleteBatch: String, values: [String]? = nil) {
        self.table = table
        self.retention = retention
        self.deleteBatch = deleteBatch
        self.values = values
    }

    /// `messaging.inbox` rows of `consumers` processed before the cutoff. Keep them at least as long
    /// as the outbox keeps published events (`OUTBOX_RETENTION`): a republished event whose inbox row
    /// is gone would be applied again.
    public static func inbox(of consumers: [String], retention: Duration) -> RetentionRule {
        RetentionRule(
            table: "messaging.inbox", retention: retention,
            deleteBatch: """
                DELETE FROM messaging.inbox WHERE (consumer, event_id) IN (
                    SELECT consumer, event_id FROM messaging.inbox WHERE consumer = ANY($3::text[]) AND processed_at < $1 LIMIT $2)
                """,
            values: consumers)
    }
}

/// Deletes rows past their retention, in batches (each its own short statement), every `interval`:
/// each pass's counts are logged and added to `retention_purged_total{table}`.
public struct RetentionSweeper: Service {
    let postgres: PostgresClient
    let rules: [RetentionRule]
    let logger: Logger
    var interval: Duration
    var batchSize: Int
    let now: @Sendable () -> Date

    public init(
        postgres: PostgresClient, rules: [RetentionRule], logger: Logger, interval: Duration = .seconds(600), batchSize: Int = 10_000,
        now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.postgres = postgres
        self.rules = rules
        self.logger = logger
        self.interval = interval
        self.batchSize = batchSize
        self.now = now
    }

    public func run() async throws {
        await repeatUntilShutdown(every: interval, logger: logger, failure: "could not delete rows past their retention; retrying") {
            _ = try await sweep()
        }
    }

    /// One pass over every rule; returns how many rows each deleted.
    public func sweep() async throws -> [String: Int] {
        var deleted: [String: Int] = [:]
        for rule in rules {
            let components = rule.retention.components
            let cutoff = now().addingTimeInterval(-(Double(components.seconds) + Double(components.attoseconds) / 1e18))
            var total = 0
            while !Task.isCancelled {
                var binds: [any PostgresEncodable] = [cutoff, batchSize]
                if let values = rule.values { binds.append(values) }
                let result = try await postgres.query(rule.deleteBatch, binds)
                total += result.affectedRows
                if result.affectedRows < batchSize { break }
            }
            deleted[rule.table, default: 0] += total
            if total > 0 {
                Counter(label: "retention_purged_total", dimensions: [("table", rule.table)]).increment(by: Int64(total))
                logger.info("deleted rows past their retention", metadata: ["table": "\(rule.table)", "count": "\(total)"])
            }
        }
        return deleted
    }
}
