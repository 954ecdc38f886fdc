import Foundation
import Logging
import Messaging
import Postgres
import Redis
import SharedModel
import Synchronization
import TestSupport

/// A counter shared by test tasks.
final class TestCounter: Sendable {
    private let value = Mutex(0)
    func increment() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

/// A switch shared by test tasks.
final class TestSwitch: Sendable {
    private let value: Mutex<Bool>
    init(_ on: Bool) { value = Mutex(on) }
    var isOn: Bool { value.withLock { $0 } }
    func set(_ on: Bool) { value.withLock { $0 = on } }
}

struct InjectedFailure: Error, CustomStringConvertible {
    var description: String { "injected failure: the handler is broken" }
}

/// Records each event once in `public.effects` (with the order it was handled), optionally failing or
/// blocking first.
struct RecordingHandler: StreamHandler {
    let invocations = TestCounter()
    let failing: TestSwitch
    let blockFirst: TestSwitch
    /// While off, an invocation waits (polling) before it does anything.
    let gate: TestSwitch

    init(failing: Bool = false, blockFirst: Bool = false, gateOpen: Bool = true) {
        self.failing = TestSwitch(failing)
        self.blockFirst = TestSwitch(blockFirst)
        self.gate = TestSwitch(gateOpen)
    }

    func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws {
        invocations.increment()
        while !gate.isOn { try await Task.sleep(for: .milliseconds(10)) }
        if blockFirst.isOn {
            blockFirst.set(false)
            // Holds the event without acknowledging it until the task is cancelled.
            try await Task.sleep(for: .seconds(3600))
        }
        if failing.isOn { throw InjectedFailure() }
        let eventID = envelope.id.uuid
        let aggregate = envelope.aggregateID
        let sequence = envelope.sequence
        try await context.commit { transaction in
            try transaction.query(
                "INSERT INTO public.effects (event_id, aggregate_id, sequence) VALUES (\(eventID), \(aggregate), \(sequence))"
            )
        }
    }
}

/// One messaging test's world: its own database, a producer (and so a stream) of its own, and helpers
/// to run relays and consumers as tasks.
struct MessagingHarness {
    let postgres: PostgresClient
    let redis: RedisClient
    let producer: EventProducer
    let stream: String
    let epochKey: String

    static func make(redisURL: String? = nil, postgresServer: String? = nil) async throws -> MessagingHarness {
        let postgres = try await migratedDatabase(on: postgresServer)
        try await postgres.query(
            "CREATE TABLE public.effects (event_id uuid PRIMARY KEY, aggregate_id text NOT NULL, sequence bigint NOT NULL, handled bigserial)"
        )
        let producer = EventProducer(rawValue: "test-\(UUID().uuidString.prefix(8).lowercased())")
        return MessagingHarness(
            postgres: postgres,
            redis: try RedisClient.forTests(url: redisURL, connections: 8),
            producer: producer,
            stream: Streams.stream(for: producer),
            epochKey: "test:epoch:\(producer.rawValue)"
        )
    }

    func shutdown() async {
        await postgres.shutdown()
        await redis.shutdown()
    }

    /// Appends `count` events, one per transaction, from `writers` concurrent writers, spread over
    /// `aggregates` aggregates.
    func append(count: Int, writers: Int = 8, aggregates: Int = 100) async throws {
        let bookings = (0..<aggregates).map { _ in BookingID() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for index in stride(from: writer, to: count, by: writers) {
                        _ = try await postgres.withTransaction { transaction in
                            try Outbox.append(
                                testEvent(bookings[index % aggregates]), producer: producer, correlationID: "test", occurredAt: Date(),
                                in: transaction
                            )
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    func relay(
        postgres: PostgresClient? = nil, pollInterval: Duration = .milliseconds(5), maxStreamLength: Int = 1_000_000,
        maintenanceInterval: Duration = .seconds(5), idleAfter: Duration = .seconds(1), idlePollInterval: Duration = .milliseconds(100)
    ) -> OutboxRelay {
        var configuration = OutboxRelay.Configuration()
        configuration.idleAfter = idleAfter
        configuration.idlePollInterval = idlePollInterval
        configuration.approximateMaxStreamLength = maxStreamLength
        configuration.maintenanceInterval = maintenanceInterval
        configuration.pollInterval = pollInterval
        configuration.standbyRetry = .milliseconds(100)
        configuration.epochKey = epochKey
        configuration.maximumBackoff = .milliseconds(200)
        return OutboxRelay(postgres: postgres ?? self.postgres, redis: redis, configuration: configuration, logger: TestEnvironment.logger)
    }

    func consumer(
        _ handler: RecordingHandler,
        name: String = "c-\(UUID().uuidString.prefix(6))",
        concurrency: Int = 8,
        visibilityTimeout: Duration = .seconds(30),
        maxAttempts: Int = 8,
        backoff: Duration = .milliseconds(2),
        deadConsumerIdle: Duration = .seconds(600)
    ) -> StreamConsumer<RecordingHandler> {
        var configuration = StreamConsumer<RecordingHandler>.Configuration(stream: stream, group: "test-group", consumerName: name)
        configuration.concurrency = concurrency
        configuration.visibilityTimeout = visibilityTimeout
        configuration.maxAttempts = maxAttempts
        configuration.initialBackoff = backoff
        configuration.maximumBackoff = max(backoff, .milliseconds(20))
        configuration.deadConsumerIdle = deadConsumerIdle
        configuration.block = .milliseconds(200)
        return StreamConsumer(postgres: postgres, redis: redis, handler: handler, configuration: configuration, logger: TestEnvironment.logger)
    }

    /// Polls `query` (one integer) until it returns `expected` or `timeout` passes; returns the last value.
    func waitUntil(_ query: PostgresStatement, equals expected: Int, timeout: Duration = .seconds(60)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        var last = -1
        while ContinuousClock.now < deadline {
            last = try await postgres.query(query)[0].decode(Int.self, at: 0)
            if last == expected { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        return last
    }

    /// Cancels the running relays and consumers, waits for them, and closes the clients.
    func stop(_ tasks: Task<Void, any Error>...) async {
        for task in tasks { task.cancel() }
        for task in tasks { _ = try? await task.value }
        await shutdown()
    }

    /// Polls a counter until it is at least `minimum` or `timeout` passes.
    func waitUntil(_ counter: TestCounter, reaches minimum: Int, timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while counter.count < minimum && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
    }

    func scalar(_ query: PostgresStatement) async throws -> Int {
        try await postgres.query(query)[0].decode(Int.self, at: 0)
    }
}
