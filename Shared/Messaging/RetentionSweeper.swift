import Foundation
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import SharedModel

/// One kind of row deleted once it is older than its retention.
public struct RetentionRule: Sendable {
    /// What the rule deletes, as logs and `retention_purged_total{table}` name it, e.g. `messaging.inbox`.
    public let table: String
    public let retention: Duration
    /// A `DELETE` of at most `limit` rows older than `cutoff`, returning nothing in particular: its
    /// affected row count is what counts.
    let deleteBatch: @Sendable (_ cutoff: Date, _ limit: Int) -> PostgresStatement

    /// `deleteBatch` builds the statement that deletes at most `limit` rows older than `cutoff`.
    public init(table: String, retention: Duration, deleteBatch: @escaping @Sendable (_ cutoff: Date, _ limit: Int) -> PostgresStatement) {
        self.table = table
        self.retention = retention
        self.deleteBatch = deleteBatch
    }

    /// `messaging.inbox` rows of `consumers` processed before the cutoff. Keep them at least as long
    /// as the outbox keeps published events (`OUTBOX_RETENTION`): a republished event whose inbox row
    /// is gone would be applied again.
    public static func inbox(of consumers: [String], retention: Duration) -> RetentionRule {
        RetentionRule(table: "messaging.inbox", retention: retention) { cutoff, limit in
            """
            DELETE FROM messaging.inbox WHERE (consumer, event_id) IN (
                SELECT consumer, event_id FROM messaging.inbox WHERE consumer = ANY(\(consumers)::text[]) AND processed_at < \(cutoff) LIMIT \(limit))
            """
        }
    }
}

/// Deletes rows past their retention, in batches (each its own short statement), every `interval`:
/// each pass's counts are logged and added to `retention_purged_total{table}` (every rule's table at
/// zero from the start).
public struct RetentionSweeper: Service {
    let postgres: PostgresClient
    let rules: [RetentionRule]
    /// `retention_purged_total{table}` of each rule's table, registered at zero.
    private let purged: [String: Counter]
    let logger: Logger
    var interval: Duration
    var batchSize: Int
    let clock: WallClock

    /// `clock` places each rule's cutoff.
    public init(
        postgres: PostgresClient, rules: [RetentionRule], logger: Logger, interval: Duration = .seconds(600), batchSize: Int = 10_000,
        clock: WallClock = .system
    ) {
        self.postgres = postgres
        self.rules = rules
        var purged: [String: Counter] = [:]
        for rule in rules {
            purged[rule.table] = Counter(label: "retention_purged_total", dimensions: [("table", rule.table)])
        }
        self.purged = purged
        self.logger = logger
        self.interval = interval
        self.batchSize = batchSize
        self.clock = clock
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
            let cutoff = clock.now().subtracting(rule.retention)
            var total = 0
            while !Task.isCancelled {
                let result = try await postgres.query(rule.deleteBatch(cutoff, batchSize))
                total += result.affectedRows
                if result.affectedRows < batchSize { break }
            }
            deleted[rule.table, default: 0] += total
            if total > 0 {
                purged[rule.table]?.increment(by: Int64(total))
                logger.info("deleted rows past their retention", metadata: ["table": "\(rule.table)", "count": "\(total)"])
            }
        }
        return deleted
    }
}
