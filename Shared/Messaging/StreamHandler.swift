import Foundation
import Postgres
import SharedModel

/// What a consumer does with one event. Implementations must be safe under redelivery and reordering.
public protocol StreamHandler: Sendable {
    /// Applies the event. Database effects go through `context.commit`, which writes them together with
    /// the inbox row that marks the event processed for this consumer. A handler that does not call
    /// `commit` has the inbox row written for it after it returns. Throwing means "not processed":
    /// the message is retried with backoff and dead-lettered after `maxAttempts` attempts.
    func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws
}

/// The consumer's services for one handler execution: transaction-scoped access to the database. A
/// handler writes only through ``commit(_:)``, together with the event's inbox row, and reads through
/// ``read(_:)``; it never holds a client with which it could write outside its inbox transaction.
public final class HandlerContext: Sendable {
    public let consumer: String
    public let envelope: EventEnvelope
    /// 1 for the first delivery; more after retries or redelivery.
    public let attempt: Int
    private let postgres: PostgresClient
    private let clock: WallClock
    let clearsAttempts: Bool
    private let committed = CommitFlag()

    init(consumer: String, envelope: EventEnvelope, attempt: Int, postgres: PostgresClient, clock: WallClock, clearsAttempts: Bool) {
        self.consumer = consumer
        self.envelope = envelope
        self.attempt = attempt
        self.postgres = postgres
        self.clock = clock
        self.clearsAttempts = clearsAttempts
    }

    /// Runs `body` in one transaction with the inbox row of this event. If another execution already
    /// processed the event, `body`'s effects are rolled back and ``AlreadyProcessed`` is thrown (the
    /// consumer treats that as success).
    ///
    /// The inbox row (and the cleanup of this event's attempt records) is queued on the transaction, so it
    /// travels with the body's first statement, or with the `COMMIT`, instead of costing a round trip of
    /// its own. An event processed before makes that insert fail on the inbox's primary key, which fails
    /// the statement it travelled with and the transaction.
    @discardableResult
    public func commit<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) throws -> T) async throws -> T {
        let consumer = self.consumer
        let eventID = envelope.id.uuid
        let clearsAttempts = self.clearsAttempts
        let processedAt = clock.now()
        let value: T
        do {
            value = try await postgres.withTransaction { transaction in
                var marking: [PostgresStatement] = [
                    "INSERT INTO messaging.inbox (consumer, event_id, processed_at) VALUES (\(consumer), \(eventID), \(processedAt))"
                ]
                if clearsAttempts {
                    marking.append("DELETE FROM messaging.attempts WHERE consumer = \(consumer) AND event_id = \(eventID)")
                }
                try transaction.enqueue(marking)
                return try body(transaction)
            }
        } catch let error as PostgresError where error.code == .uniqueViolation && error.constraint == Self.inboxKey {
            throw AlreadyProcessed()
        }
        committed.set()
        return value
    }

    /// The inbox's primary key (consumer, event id): one row per event a consumer processed.
    static let inboxKey = "inbox_pkey"

    /// Runs `body` in a read-only transaction (a write in it fails): what a handler looks up before it
    /// decides, e.g. whether an earlier delivery already did the work.
    public func read<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) throws -> T) async throws -> T {
        try await postgres.withTransaction(readOnly: true, body)
    }

    var didCommit: Bool { committed.isSet }
}

/// The event was already processed by this consumer; nothing was changed.
public struct AlreadyProcessed: Error, Sendable {}

final class CommitFlag: Sendable {
    private let value = Synchronized(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// A handler whose whole effect is database work in one transaction. The consumer can then commit
/// several events of a lane in one transaction (with their inbox rows) instead of one each; if any of
/// them throws, the batch is rolled back and the events are handled one by one, so retries and dead
/// letters work exactly as for a single event.
public protocol TransactionalStreamHandler: StreamHandler {
    /// Applies the event inside `transaction`, which also holds the event's inbox row.
    func apply(_ envelope: EventEnvelope, in transaction: PostgresTransaction) throws
    /// Called after the transaction that applied `envelopes` committed (e.g. to wake a worker that
    /// acts on what they wrote). Not called for events skipped as already processed.
    func committed(_ envelopes: [EventEnvelope])
}

extension TransactionalStreamHandler {
    public func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws {
        try await context.commit { transaction in try self.apply(envelope, in: transaction) }
        committed([envelope])
    }

    public func committed(_ envelopes: [EventEnvelope]) {}
}
