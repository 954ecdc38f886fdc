import Foundation
import Logging
import Messaging
import Postgres
import Redis
import SharedModel
import Synchronization
import TestSupport
import Testing

@testable import Booking

/// A clock the test moves by hand, shared by saga coordinators and deadline pollers.
final class SagaTestClock: Sendable {
    private let instant: Mutex<Date>

    init(_ start: Date = Date()) {
        instant = Mutex(start)
    }

    var now: Date { instant.withLock { $0 } }

    func set(_ date: Date) {
        instant.withLock { $0 = date }
    }
}

/// Runs `work` for `0..<count` with at most `limit` running at once; the results in index order.
func mapConcurrently<T: Sendable>(_ count: Int, limit: Int, _ work: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
    try await withThrowingTaskGroup(of: (Int, T).self) { group in
        var results: [Int: T] = [:]
        var next = 0
        func start() {
            guard next < count else { return }
            let index = next
            next += 1
            group.addTask { (index, try await work(index)) }
        }
        for _ in 0..<min(limit, count) { start() }
        while let (index, value) = try await group.next() {
            results[index] = value
            start()
        }
        return (0..<count).compactMap { results[$0] }
    }
}

/// Saga coordinators (stream consumers of one group) and deadline pollers running in the background
/// until ``stop()``.
final class SagaInstances: Sendable {
    private let tasks: [Task<Void, Never>]

    /// One consumer (named `saga-<n>`, reading `batchSize` entries at a time so that neighbouring
    /// entries go to different instances) and one poller per element of `parts`, all on `stream`
    /// and the test's `clock`, logging to `logger`.
    init(_ parts: [BookingParts], stream: String, clock: SagaTestClock, logger: Logger, batchSize: Int = 1, pollerBatch: Int = 25) {
        var tasks: [Task<Void, Never>] = []
        for (index, part) in parts.enumerated() {
            let consumer = part.sagaConsumer(
                logger: logger, clock: WallClock { clock.now },
                tuning: { configuration in
                    configuration.stream = stream
                    configuration.consumerName = "saga-\(index + 1)"
                    configuration.batchSize = batchSize
                    configuration.initialBackoff = .milliseconds(20)
                })
            let poller = SagaDeadlinePoller(
                postgres: part.app.postgres, holds: part.holds, logger: logger, interval: .milliseconds(20), batchSize: pollerBatch,
                now: { clock.now })
            tasks.append(Task { try? await consumer.run() })
            tasks.append(Task { try? await poller.run() })
        }
        self.tasks = tasks
    }

    func stop() async {
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}

/// Keeps what a component logs at warning level and above (e.g. the stream consumer's `handler failed`),
/// for tests that require it to have had no failure at all.
final class SagaLogRecorder: Sendable {
    struct Entry: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])

    var logger: Logger {
        Logger(label: "saga-concurrency") { _ in Handler(recorder: self) }
    }

    var recorded: [Entry] { entries.withLock { $0 } }

    fileprivate func append(_ entry: Entry) {
        entries.withLock { $0.append(entry) }
    }

    private struct Handler: LogHandler {
        let recorder: SagaLogRecorder
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .warning

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = metadata.merging(event.metadata ?? [:]) { _, new in new }
            recorder.append(Entry(level: event.level, message: event.message.description, metadata: fields.mapValues { "\($0)" }))
        }
    }
}

/// Publishes envelopes to a test stream and waits for the saga group to have handled them.
final class SagaFeed: Sendable {
    let postgres: PostgresClient
    let redis: RedisClient
    let stream: String
    /// The distinct envelope ids published so far.
    private let published = Mutex<Set<UUID>>([])

    init(postgres: PostgresClient, redis: RedisClient, stream: String) {
        self.postgres = postgres
        self.redis = redis
        self.stream = stream
    }

    static func envelope(_ event: some DomainEvent) throws -> EventEnvelope {
        try EventEnvelope(
            event: event, occurredAt: Date(), sequence: 1, correlationID: "saga-concurrency", causationID: nil, producer: .paymentsWebhook)
    }

    /// XADDs each envelope in order (a repeated envelope is the same delivery twice).
    func publish(_ envelopes: [EventEnvelope]) async throws {
        for envelope in envelopes {
            _ = try await redis.xadd(stream, fields: [(Streams.envelopeField, envelope.jsonBytes())])
            published.withLock { _ = $0.insert(envelope.id.uuid) }
        }
    }

    /// Waits (up to `timeout`) until every distinct envelope published has its inbox row and the group
    /// has no entry undelivered or unacknowledged.
    func waitUntilHandled(timeout: Duration = .seconds(60)) async throws {
        let expected = published.withLock { $0.count }
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            let handled = try await postgres.count("SELECT count(*) FROM messaging.inbox WHERE consumer = \(SagaCoordinator.group)")
            let group = try await redis.xinfoGroups(stream).first { $0.name == SagaCoordinator.group }
            if handled == expected, let group, group.pending == 0, (group.lag ?? 0) == 0 { return }
            last = "\(handled) of \(expected) in the inbox, group \(String(describing: group))"
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("waited \(timeout) for the saga group to handle \(expected) envelopes: \(last)")
    }
}

/// One row per booking: its saga and booking as stored.
struct StoredSaga: Sendable {
    let state: String
    let status: String
    let version: Int64
    let hasDeadline: Bool
    let confirmedAt: Bool
    let cancelledAt: Bool
    let expiredAt: Bool
}

/// One saga step as stored.
struct StoredStep: Sendable {
    let step: String
    let kind: String
    let outcome: String
    let from: String?
    let to: String?

    var label: String { "\(step):\(outcome)" }
    /// A forward step that moved the saga (the first row, `booking_requested`, has no `from`).
    var isTransition: Bool { kind == "forward" && from != nil && to != nil }
}

/// The saga's tables and the outbox and dead letters, read once, grouped by booking.
struct SagaTableSnapshot: Sendable {
    var sagas: [BookingID: StoredSaga] = [:]
    var steps: [BookingID: [StoredStep]] = [:]
    /// Outbox envelopes of the booking aggregate by event type.
    var outbox: [BookingID: [String: [EventEnvelope]]] = [:]
    var refunds: [RefundRequested] = []
    /// Dead letters: (kind, aggregate id, event id, error).
    var deadLetters: [(kind: String, aggregateID: String, eventID: UUID, error: String)] = []
    /// Whether each booking's seat rows are released, by seat.
    var seats: [BookingID: [String: Bool]] = [:]

    static let outboxTypes = ["booking.confirmed", "booking.cancelled", "booking.expired", "refund.requested"]

    static func read(_ postgres: PostgresClient) async throws -> SagaTableSnapshot {
        var snapshot = SagaTableSnapshot()
        for row in try await postgres.query(
            """
            SELECT b.booking_id, s.state, b.status, s.version, s.deadline IS NOT NULL, b.confirmed_at IS NOT NULL, b.cancelled_at IS NOT NULL,
                   b.expired_at IS NOT NULL
            FROM booking.bookings b JOIN booking.sagas s USING (booking_id)
            """)
        {
            snapshot.sagas[BookingID(try row.decode(UUID.self, at: 0))] = StoredSaga(
                state: try row.decode(String.self, at: 1), status: try row.decode(String.self, at: 2), version: try row.decode(Int64.self, at: 3),
                hasDeadline: try row.decode(Bool.self, at: 4), confirmedAt: try row.decode(Bool.self, at: 5),
                cancelledAt: try row.decode(Bool.self, at: 6), expiredAt: try row.decode(Bool.self, at: 7))
        }
        for row in try await postgres.query(
            "SELECT booking_id, step, kind, outcome, from_state, to_state FROM booking.saga_steps ORDER BY step_id")
        {
            snapshot.steps[BookingID(try row.decode(UUID.self, at: 0)), default: []].append(
                StoredStep(
                    step: try row.decode(String.self, at: 1), kind: try row.decode(String.self, at: 2), outcome: try row.decode(String.self, at: 3),
                    from: try row.decode(String?.self, at: 4), to: try row.decode(String?.self, at: 5)))
        }
        for row in try await postgres.query(
            "SELECT envelope::text FROM messaging.outbox WHERE event_type = ANY(\(outboxTypes)) ORDER BY position")
        {
            let envelope = try EventEnvelope(jsonData: Data(try row.decode(String.self, at: 0).utf8))
            if envelope.type == RefundRequested.eventType { snapshot.refunds.append(try envelope.decode(RefundRequested.self)) }
            guard let id = try? BookingID(parsing: envelope.aggregateID) else { continue }
            snapshot.outbox[id, default: [:]][envelope.type, default: []].append(envelope)
        }
        for row in try await postgres.query("SELECT kind, aggregate_id, event_id, error FROM messaging.dead_letters") {
            snapshot.deadLetters.append(
                (
                    kind: try row.decode(String.self, at: 0), aggregateID: try row.decode(String.self, at: 1),
                    eventID: try row.decode(UUID.self, at: 2), error: try row.decode(String.self, at: 3)
                ))
        }
        for row in try await postgres.query("SELECT booking_id, seat_id, released_at IS NOT NULL FROM booking.booking_seats") {
            snapshot.seats[BookingID(try row.decode(UUID.self, at: 0)), default: [:]][try row.decode(String.self, at: 1)] = try row.decode(
                Bool.self, at: 2)
        }
        return snapshot
    }

    func outbox(_ booking: BookingID, _ type: String) -> [EventEnvelope] { outbox[booking]?[type] ?? [] }
}

extension SagaDeadlinePoller {
    /// A poller on `postgres` whose clock reads `now`, deciding with the default saga policy.
    init(
        postgres: PostgresClient, holds: SeatHoldStore, logger: Logger, interval: Duration = .seconds(1), batchSize: Int = 100,
        now: @escaping @Sendable () -> Date
    ) {
        self.init(
            postgres: postgres, runner: SagaRunner(decider: SagaDecider()), holds: holds, logger: logger, clock: WallClock(now), interval: interval,
            batchSize: batchSize)
    }
}

extension SagaOperations {
    /// Saga operations on `postgres` whose refunds may stay pending for `refundPendingBound`.
    init(postgres: PostgresClient, refundPendingBound: Duration) {
        self.init(postgres: postgres, runner: SagaRunner(decider: SagaDecider(policy: .init(refundPendingBound: refundPendingBound))))
    }
}

extension PostgresBookingRepository {
    /// A repository on `postgres` whose cancellations' refunds may stay pending for `refundPendingBound`.
    init(postgres: PostgresClient, refundPendingBound: Duration) {
        self.init(postgres: postgres, runner: SagaRunner(decider: SagaDecider(policy: .init(refundPendingBound: refundPendingBound))))
    }
}
