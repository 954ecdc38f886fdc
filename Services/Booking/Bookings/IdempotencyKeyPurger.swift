import Foundation
import Logging
import Messaging
import Postgres
import ServiceLifecycle
import SharedModel

/// Deletes expired idempotency keys in batches, every `interval`. Expired keys are already ignored
/// by lookups; this keeps the table from growing without bound. Several instances may run: a
/// batch that another instance deleted first simply deletes fewer rows.
struct IdempotencyKeyPurger: Service {
    let postgres: PostgresClient
    let logger: Logger
    var interval: Duration = .seconds(600)
    var batchSize = 10_000
    var clock: WallClock = .system

    func run() async throws {
        await repeatUntilShutdown(every: interval, logger: logger, failure: "could not purge expired idempotency keys") {
            let purged = try await purge()
            if purged > 0 { logger.info("purged expired idempotency keys", metadata: ["count": "\(purged)"]) }
        }
    }

    /// Deletes every key expired at the clock's now; returns how many.
    func purge() async throws -> Int {
        var total = 0
        while true {
            let rows = try await postgres.query(
                """
                DELETE FROM booking.idempotency_keys WHERE ctid IN (
                    SELECT ctid FROM booking.idempotency_keys WHERE expires_at <= \(clock.now()) LIMIT \(batchSize)
                )
                """)
            total += rows.affectedRows
            if rows.affectedRows < batchSize || Task.isCancelled { return total }
        }
    }
}
