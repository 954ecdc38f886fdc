import Foundation
import Messaging
import Postgres
import SharedModel
import TestSupport
import Testing

@Suite("Stream consumer when Postgres goes away")
struct ConsumerOutageTests {
    @Test(
        "an event whose handler hits a Postgres outage stays claimed and is handled within seconds of Postgres coming back, not after the 30 s visibility timeout; no attempt is counted"
    )
    func outageIsWaitedOutInProcess() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let world = try await MessagingHarness.make(postgresServer: servers.databaseURL)
            try await world.append(count: 1, writers: 1, aggregates: 1)
            let relay = Task { try await world.relay().run() }
            #expect(try await world.waitUntil("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL", equals: 0) == 0)
            relay.cancel()
            _ = try? await relay.value

            // The handler has the event in hand when Postgres stops; its commit then fails.
            let handler = RecordingHandler(gateOpen: false)
            let consumer = Task {
                try await world.consumer(handler, concurrency: 1, visibilityTimeout: .seconds(30), backoff: .milliseconds(200)).run()
            }
            try await world.waitUntil(handler.invocations, reaches: 1)
            #expect(handler.invocations.count == 1)
            try await servers.stopPostgres()
            handler.gate.set(true)
            // Tries while Postgres is down fail to commit and to count the attempt.
            try await world.waitUntil(handler.invocations, reaches: 3)
            #expect(handler.invocations.count >= 3)
            try await servers.startPostgres()
            let back = ContinuousClock.now
            #expect(try await world.waitUntil("SELECT count(*) FROM public.effects", equals: 1, timeout: .seconds(20)) == 1)
            let waited = ContinuousClock.now - back
            // The outage retry waits at most 2 s (plus reconnecting); a claim would take 30 s or more.
            #expect(waited < .seconds(10), "handled \(waited) after Postgres came back")
            #expect(try await world.scalar("SELECT count(*) FROM messaging.attempts") == 0, "an outage counts no attempt")
            #expect(try await world.scalar("SELECT count(*) FROM messaging.dead_letters") == 0)
            await world.stop(consumer)
        }
    }
}

/// Counts each event it applies in `public.applied` (no key: a second apply shows as a second row).
struct CountingTransactionalHandler: TransactionalStreamHandler {
    func apply(_ envelope: EventEnvelope, in transaction: PostgresTransaction) throws {
        try transaction.query("INSERT INTO public.applied (event_id) VALUES (\(envelope.id.uuid))")
    }

    func committed(_ envelopes: [EventEnvelope]) {}
}

@Suite("Stream consumer: batched commits")
struct ConsumerBatchTests {
    @Test("an event in the stream twice (republished) and read twice in one batch is applied once")
    func duplicateInOneBatchAppliedOnce() async throws {
        try await Self.applyingEveryEventTwice(CountingTransactionalHandler()) { (world: MessagingHarness) async throws in
            #expect(try await world.scalar("SELECT count(*) FROM public.applied") == 5)
            #expect(try await world.scalar("SELECT count(DISTINCT event_id) FROM public.applied") == 5)
        }
    }

    @Test("an event in the stream twice, handled by a handler that commits, is applied once; the second copy counts no failure")
    func duplicateCommitIsAlreadyProcessed() async throws {
        try await Self.applyingEveryEventTwice(CountingCommitHandler()) { (world: MessagingHarness) async throws in
            #expect(try await world.scalar("SELECT count(*) FROM public.applied") == 5)
            #expect(try await world.scalar("SELECT count(DISTINCT event_id) FROM public.applied") == 5)
            // The second copies were recognised by the inbox's key, not retried as failures.
            #expect(try await world.scalar("SELECT count(*) FROM messaging.attempts") == 0)
            #expect(try await world.scalar("SELECT count(*) FROM messaging.dead_letters") == 0)
        }
    }

    /// Puts five events in the stream twice each, all before the consumer reads (one read takes them
    /// all), runs `handler` until the five are in the inbox and half a second more, runs `checks`, and
    /// stops.
    private static func applyingEveryEventTwice<Handler: StreamHandler>(
        _ handler: Handler, then checks: (MessagingHarness) async throws -> Void
    ) async throws {
        let world = try await MessagingHarness.make()
        try await world.postgres.query("CREATE TABLE public.applied (event_id uuid NOT NULL)")
        let envelopes = try (0..<5).map { _ in
            try EventEnvelope(
                event: testEvent(), occurredAt: Date(), sequence: 1, correlationID: "test", causationID: nil, producer: world.producer)
        }
        for envelope in envelopes + envelopes {
            _ = try await world.redis.xadd(world.stream, fields: [(Streams.envelopeField, envelope.jsonBytes())])
        }
        var configuration = StreamConsumer<Handler>.Configuration(stream: world.stream, group: "test-group", consumerName: "twice")
        configuration.concurrency = 1
        configuration.block = .milliseconds(200)
        let consumer = StreamConsumer(
            postgres: world.postgres, redis: world.redis, handler: handler, configuration: configuration, logger: TestEnvironment.logger)
        let task = Task { try await consumer.run() }
        #expect(try await world.waitUntil("SELECT count(*) FROM messaging.inbox WHERE consumer = 'test-group'", equals: 5) == 5)
        try await Task.sleep(for: .milliseconds(500))
        try await checks(world)
        await world.stop(task)
    }
}

/// Applies each event through ``HandlerContext/commit(_:)`` (not as a transactional handler, so the
/// consumer never batches it), counting it in `public.applied`.
struct CountingCommitHandler: StreamHandler {
    func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws {
        try await context.commit { transaction in
            try transaction.query("INSERT INTO public.applied (event_id) VALUES (\(envelope.id.uuid))")
        }
    }
}
