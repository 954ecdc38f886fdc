import Foundation
import Logging
import Metrics
import Postgres
import ServiceLifecycle
import SharedModel

/// Applies events a consumer group never received: the outbox is the source of truth of every event,
/// and a consumer's inbox of what it applied, so an event published more than `grace` ago that the
/// group has neither applied, nor is retrying, nor dead-lettered, was lost between the two (Redis
/// failed over to a lagging replica, lost its last second of AOF, was restored from a snapshot, or a
/// trim dropped an unread entry) - and the epoch check, which catches a Redis that lost everything,
/// cannot see it. Each such event is handed to the group's own handler, through the same inbox
/// transaction as a delivery from the stream, so an event that was merely slow is still applied once.
///
/// Runs every `interval`; each run looks at events published between `window` and `grace` ago (the
/// outbox keeps published rows for its retention period) and applies at most `batchSize`, oldest
/// first. Counts what it applied in `outbox_reconciled_total{stream,group,outcome}`.
public struct OutboxReconciler<Handler: StreamHandler>: Service {
    /// Which group, on which stream, and how patiently.
    public struct Configuration: Sendable {
        public var stream: String
        public var group: String
        /// How long after its publication an event unapplied by the group counts as lost: longer than the
        /// consumer's visibility timeout and the backlog it sees under load.
        public var grace: Duration = .seconds(120)
        /// How far back a run looks.
        public var window: Duration = .seconds(24 * 3600)
        public var interval: Duration = .seconds(30)
        public var batchSize = 200

        public init(stream: String, group: String) {
            self.stream = stream
            self.group = group
        }
    }

    let postgres: PostgresClient
    let handler: Handler
    let configuration: Configuration
    let logger: Logger
    let clock: WallClock
    /// `outbox_reconciled_total` by outcome, registered at zero.
    private let outcomes: [String: Counter]

    /// What a reconciled event's `outcome` label says: applied now, applied before (the inbox had it
    /// after all), failed (tried again next run), or not a readable event.
    static var outcomeLabels: [String] { ["applied", "already_applied", "failed", "unreadable"] }

    /// `clock` places the window and the grace, and dates what the handler commits.
    public init(postgres: PostgresClient, handler: Handler, configuration: Configuration, logger: Logger, clock: WallClock = .system) {
        self.postgres = postgres
        self.handler = handler
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        outcomes = Dictionary(
            uniqueKeysWithValues: Self.outcomeLabels.map { outcome in
                (
                    outcome,
                    Counter(
                        label: "outbox_reconciled_total",
                        dimensions: [("stream", configuration.stream), ("group", configuration.group), ("outcome", outcome)])
                )
            })
    }

    public func run() async throws {
        await repeatUntilShutdown(
            every: configuration.interval, logger: logger, failure: "could not reconcile the outbox with the consumer's inbox; retrying",
            metadata: ["stream": "\(configuration.stream)", "group": "\(configuration.group)"]
        ) {
            try await reconcile()
        }
    }

    /// One run: applies the lost events it finds (at most `batchSize`); returns how many it applied.
    @discardableResult
    public func reconcile() async throws -> Int {
        let at = clock.now()
        let group = configuration.group
        let rows = try await postgres.query(
            """
            SELECT o.envelope::text FROM messaging.outbox o
            WHERE o.stream = \(configuration.stream) AND o.published_at < \(at.subtracting(configuration.grace))
                AND o.published_at > \(at.subtracting(configuration.window))
                AND NOT EXISTS (SELECT 1 FROM messaging.inbox i WHERE i.consumer = \(group) AND i.event_id = o.event_id)
                AND NOT EXISTS (SELECT 1 FROM messaging.attempts a WHERE a.consumer = \(group) AND a.event_id = o.event_id)
                AND NOT EXISTS (SELECT 1 FROM messaging.dead_letters d WHERE d.consumer = \(group) AND d.event_id = o.event_id)
            ORDER BY o.position
            LIMIT \(configuration.batchSize)
            """)
        var applied = 0
        for row in rows {
            let text = try row.decode(String.self, at: 0)
            let envelope: EventEnvelope
            do {
                envelope = try EventEnvelope(jsonData: Data(text.utf8))
            } catch {
                count("unreadable")
                logger.error("an outbox row is not a readable event", metadata: ["stream": "\(configuration.stream)", "error": "\(error)"])
                continue
            }
            let context = HandlerContext(
                consumer: configuration.group, envelope: envelope, attempt: 1, postgres: postgres, clock: clock, clearsAttempts: true)
            do {
                try await handler.handle(envelope, context: context)
                if !context.didCommit {
                    // As the consumer does for a handler that wrote nothing: the inbox row marks it applied.
                    try await context.commit { _ in }
                }
                applied += 1
                count("applied")
                logger.warning(
                    "applied an event the consumer never received from its stream",
                    metadata: [
                        "stream": "\(configuration.stream)", "group": "\(configuration.group)", "event_id": "\(envelope.id)",
                        "event_type": "\(envelope.type)", "aggregate_id": "\(envelope.aggregateID)",
                    ])
            } catch is AlreadyProcessed {
                count("already_applied")
            } catch {
                count("failed")
                logger.error(
                    "could not apply an event the consumer never received; trying again next run",
                    metadata: [
                        "stream": "\(configuration.stream)", "group": "\(configuration.group)", "event_id": "\(envelope.id)", "error": "\(error)",
                    ])
            }
        }
        return applied
    }

    private func count(_ outcome: String) {
        outcomes[outcome]?.increment()
    }
}
