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
        let world = try await MessagingHarness.make()
        try await world.postgres.query("CREATE TABLE public.applied (event_id uuid NOT NULL)")
        let envelopes = try (0..<5).map { _ in
            try EventEnvelope(
                event: testEvent(), occurredAt: Date(), sequence: 1, correlationID: "test", causationID: nil, producer: world.producer)
        }
        // Every event twice, all in the stream before the consumer reads: one read takes them all.
        for envelope in envelopes + envelopes {
            _ = try await world.redis.xadd(world.stream, fields: [(Streams.envelopeField, envelope.jsonBytes())])
        }
        var configuration = StreamConsumer<CountingTransactionalHandler>.Configuration(
            stream: world.stream, group: "test-group", consumerName: "batch")
        configuration.concurrency = 1
        configuration.block = .milliseconds(200)
        let consumer = StreamConsumer(
            postgres: world.postgres, redis: world.redis, handler: CountingTransactionalHandler(), configuration: configuration,
            logger: TestEnvironment.logger)
        let task = Task { try await consumer.run() }
        #expect(try await world.waitUntil("SELECT count(*) FROM messaging.inbox WHERE consumer = 'test-group'", equals: 5) == 5)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await world.scalar("SELECT count(*) FROM public.applied") == 5)
        #expect(try await world.scalar("SELECT count(DISTINCT event_id) FROM public.applied") == 5)
        await world.stop(task)
    }
}
