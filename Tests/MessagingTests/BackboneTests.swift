import Foundation
import Messaging
import Postgres
import Redis
import ServiceLifecycle
import SharedModel
import TestSupport
import Testing

@Suite("Messaging backbone: relay, consumer, dead letters")
struct BackboneTests {
    @Test("10,000 events from 8 writers reach the consumer exactly once in effect, across Redis stopped 5 s and restarted empty")
    func exactlyOnceAcrossRedisLoss() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let world = try await MessagingHarness.make(redisURL: servers.redisURL)
            let handler = RecordingHandler()
            let relay = Task { try await world.relay().run() }
            let consumer = Task { try await world.consumer(handler).run() }
            let writers = Task { try await world.append(count: 10_000, writers: 8) }
            // Let part of the stream flow, then take Redis away for 5 s and bring it back empty.
            _ = try await world.waitUntil("SELECT least(count(*), 2000)::int FROM public.effects", equals: 2000, timeout: .seconds(60))
            try await servers.stopRedis()
            try await Task.sleep(for: .seconds(5))
            try await servers.startRedis()
            try await writers.value
            let effects = try await world.waitUntil("SELECT count(*) FROM public.effects", equals: 10_000, timeout: .seconds(120))
            #expect(effects == 10_000)
            #expect(try await world.scalar("SELECT count(*) FROM messaging.inbox WHERE consumer = 'test-group'") == 10_000)
            // The relay marks rows published after their XADD, so the consumer may apply the last events first.
            #expect(
                try await world.waitUntil("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL", equals: 0, timeout: .seconds(30)) == 0)
            #expect(try await world.scalar("SELECT count(*) FROM messaging.dead_letters") == 0)
            await world.stop(relay, consumer)
        }
    }

    @Test("events of one aggregate are handled in sequence order by one consumer running 8 lanes")
    func perAggregateOrder() async throws {
        let world = try await MessagingHarness.make()
        let handler = RecordingHandler()
        try await world.append(count: 2_000, writers: 8, aggregates: 20)
        let relay = Task { try await world.relay().run() }
        let consumer = Task { try await world.consumer(handler, concurrency: 8).run() }
        #expect(try await world.waitUntil("SELECT count(*) FROM public.effects", equals: 2_000) == 2_000)
        let outOfOrder = try await world.scalar(
            """
            SELECT count(*) FROM (
                SELECT sequence < lag(sequence) OVER (PARTITION BY aggregate_id ORDER BY handled) AS regressed FROM public.effects
            ) steps WHERE regressed
            """
        )
        #expect(outOfOrder == 0)
        #expect(try await world.scalar("SELECT count(DISTINCT aggregate_id) FROM public.effects") == 20)
        await world.stop(relay, consumer)
    }

    @Test("a handler cancelled before the ack loses nothing: another consumer reclaims the message after the visibility timeout")
    func reclaimAfterCancellation() async throws {
        let world = try await MessagingHarness.make()
        let stuck = RecordingHandler(blockFirst: true)
        let first = Task { try await world.consumer(stuck, name: "first", concurrency: 1, visibilityTimeout: .milliseconds(400)).run() }
        try await world.append(count: 1, writers: 1, aggregates: 1)
        let relay = Task { try await world.relay().run() }
        // Wait until the first consumer holds the event, then kill it before it acknowledges.
        try await world.waitUntil(stuck.invocations, reaches: 1)
        #expect(stuck.invocations.count == 1)
        first.cancel()
        _ = try? await first.value
        #expect(try await world.scalar("SELECT count(*) FROM public.effects") == 0)
        let pending = try await world.redis.xpending(world.stream, group: "test-group")
        #expect(pending.count == 1)

        let rescuer = RecordingHandler()
        let second = Task { try await world.consumer(rescuer, name: "second", concurrency: 1, visibilityTimeout: .milliseconds(400)).run() }
        #expect(try await world.waitUntil("SELECT count(*) FROM public.effects", equals: 1, timeout: .seconds(20)) == 1)
        #expect(rescuer.invocations.count == 1)
        // The XACK follows the commit: wait for it rather than racing it.
        var stillPending = try await world.redis.xpending(world.stream, group: "test-group")
        let deadline = ContinuousClock.now + .seconds(10)
        while !stillPending.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            stillPending = try await world.redis.xpending(world.stream, group: "test-group")
        }
        #expect(stillPending.isEmpty)
        await world.stop(second, relay)
    }

    @Test("a handler that always throws dead-letters after exactly maxAttempts; replay after the fix applies once; a second replay changes nothing")
    func deadLetterAndReplay() async throws {
        let world = try await MessagingHarness.make()
        let handler = RecordingHandler(failing: true)
        let relay = Task { try await world.relay().run() }
        let consumer = Task { try await world.consumer(handler, maxAttempts: 4).run() }
        try await world.append(count: 1, writers: 1, aggregates: 1)
        #expect(try await world.waitUntil("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'failure'", equals: 1) == 1)
        try await Task.sleep(for: .milliseconds(200))
        #expect(handler.invocations.count == 4)
        let store = DeadLetterStore(postgres: world.postgres)
        let page = try await store.list(.init(kind: .failure, status: .open))
        let entry = try #require(page.entries.first)
        #expect(entry.attempts == 4)
        #expect(entry.error.contains("injected failure"))
        #expect(entry.consumer == "test-group")
        #expect(entry.stream == world.stream)
        // The announcement went to the dead-letter stream through the outbox.
        #expect(try await world.scalar("SELECT count(*) FROM messaging.outbox WHERE stream = 'stream:dead-letters'") == 1)
        #expect(try await world.scalar("SELECT count(*) FROM messaging.attempts") == 0)
        // Found by the event's aggregate (e.g. a booking id).
        #expect(try await store.list(.init(aggregateID: entry.aggregateID)).entries.map(\.id) == [entry.id])

        handler.failing.set(false)
        #expect(try await store.replay(id: entry.id, operatorName: "ops@example") == .done)
        #expect(try await world.waitUntil("SELECT count(*) FROM public.effects", equals: 1) == 1)
        #expect(try await store.replay(id: entry.id, operatorName: "ops@example") == .unchanged(.replayed))
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await world.scalar("SELECT count(*) FROM public.effects") == 1)
        #expect(handler.invocations.count == 5)
        let replayed = try #require(try await store.entry(id: entry.id))
        #expect(replayed.status == .replayed)
        #expect(replayed.operatorName == "ops@example")
        await world.stop(relay, consumer)
    }

    @Test("an event that failed here and was then processed by another instance is acknowledged, its attempts cleared, applied once")
    func processedElsewhereAfterAFailure() async throws {
        let world = try await MessagingHarness.make()
        let handler = RecordingHandler(failing: true)
        let relay = Task { try await world.relay().run() }
        let consumer = Task { try await world.consumer(handler, maxAttempts: 1000).run() }
        try await world.append(count: 1, writers: 1, aggregates: 1)
        #expect(try await world.waitUntil("SELECT count(*) FROM messaging.attempts", equals: 1) == 1)
        // Another instance of the group commits the event (its inbox row and effect) meanwhile.
        try await world.postgres.withTransaction { transaction in
            try transaction.query(
                "INSERT INTO messaging.inbox (consumer, event_id) SELECT 'test-group', event_id FROM messaging.outbox WHERE stream = \(world.stream)")
            try transaction.query(
                "INSERT INTO public.effects (event_id, aggregate_id, sequence) SELECT event_id, aggregate_id, sequence FROM messaging.outbox WHERE stream = \(world.stream)"
            )
        }
        handler.failing.set(false)
        #expect(try await world.waitUntil("SELECT count(*) FROM messaging.attempts", equals: 0, timeout: .seconds(10)) == 0)
        var pending = -1
        let deadline = ContinuousClock.now + .seconds(5)
        while pending != 0, ContinuousClock.now < deadline {
            pending = try await world.redis.xinfoGroups(world.stream).first { $0.name == "test-group" }?.pending ?? -1
            if pending != 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(pending == 0, "acknowledged")
        #expect(try await world.scalar("SELECT count(*) FROM public.effects") == 1)
        #expect(try await world.scalar("SELECT count(*) FROM messaging.dead_letters") == 0)
        await world.stop(relay, consumer)
    }

    @Test("the relay leader killed mid-stream: the standby takes over and every event is published, without duplicate effects")
    func leaderFailover() async throws {
        let world = try await MessagingHarness.make()
        let handler = RecordingHandler()
        try await world.append(count: 3_000, writers: 8, aggregates: 50)
        let leaderClient = try TestDatabase.client(url: world.postgres.configuration.url, connections: 2)
        let standbyClient = try TestDatabase.client(url: world.postgres.configuration.url, connections: 2)
        let leader = Task { try await world.relay(postgres: leaderClient).run() }
        try await Task.sleep(for: .milliseconds(300))
        let standby = Task { try await world.relay(postgres: standbyClient).run() }
        let consumer = Task { try await world.consumer(handler).run() }
        _ = try await world.waitUntil("SELECT least(count(*), 500)::int FROM public.effects", equals: 500)
        // Kill the leader: its task ends and its session is terminated, releasing the lock.
        leader.cancel()
        try await world.postgres.query(
            """
            SELECT pg_terminate_backend(pid) FROM pg_locks
            WHERE locktype = 'advisory' AND objid::text::bigint = \(Int64(OutboxRelay.leaderLockKey & 0xFFFF_FFFF)) AND granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """
        )
        _ = try? await leader.value
        #expect(try await world.waitUntil("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL", equals: 0) == 0)
        #expect(try await world.waitUntil("SELECT count(*) FROM public.effects", equals: 3_000) == 3_000)
        #expect(try await world.scalar("SELECT count(*) FROM messaging.inbox") == 3_000)
        await world.stop(standby, consumer)
        await leaderClient.shutdown()
        await standbyClient.shutdown()
    }

    @Test("resolve and discard close open entries with a note; nothing is deleted")
    func resolveAndDiscard() async throws {
        let world = try await MessagingHarness.make()
        let store = DeadLetterStore(postgres: world.postgres)
        let envelope = try EventEnvelope(
            event: testEvent(), occurredAt: Date(), sequence: 1, correlationID: "c", causationID: nil, producer: world.producer
        )
        let ids = try await world.postgres.withTransaction { transaction in
            [
                try DeadLetterStore.record(
                    kind: .review, stream: world.stream, consumer: "saga", envelope: envelope, error: "late payment", attempts: 1,
                    firstFailedAt: Date(), in: transaction),
                try DeadLetterStore.record(
                    kind: .failure, stream: world.stream, consumer: "other", envelope: envelope, error: "boom", attempts: 8,
                    firstFailedAt: Date(), in: transaction),
            ]
        }
        #expect(try await store.replay(id: ids[0], operatorName: "ops") == .notReplayable)
        #expect(try await store.resolve(id: ids[0], note: "refund confirmed", operatorName: "ops") == .done)
        #expect(try await store.resolve(id: ids[0], note: "again", operatorName: "ops") == .unchanged(.resolved))
        #expect(try await store.discard(id: ids[1], reason: "test data", operatorName: "ops") == .done)
        #expect(try await store.discard(id: UUID(), reason: "x", operatorName: "ops") == .notFound)
        let resolved = try #require(try await store.entry(id: ids[0]))
        #expect(resolved.status == .resolved)
        #expect(resolved.resolutionNote == "refund confirmed")
        #expect(try await world.scalar("SELECT count(*) FROM messaging.dead_letters") == 2)
        // Cursor pagination walks every entry once.
        let first = try await store.list(.init(), limit: 1)
        let second = try await store.list(.init(), cursor: first.nextCursor, limit: 1)
        #expect(first.entries.count == 1 && second.entries.count == 1)
        #expect(Set(first.entries.map(\.id) + second.entries.map(\.id)) == Set(ids))
        #expect(second.nextCursor == nil)
        await world.shutdown()
    }
}

@Suite("Messaging shutdown")
struct ConsumerShutdownTests {
    /// Takes 300 ms per event, so a shutdown lands while one is in hand.
    struct SlowHandler: StreamHandler {
        let started = TestCounter()
        func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws {
            started.increment()
            try await Task.sleep(for: .milliseconds(300))
            let eventID = envelope.id.uuid
            try await context.commit { transaction in
                try transaction.query("INSERT INTO public.effects (event_id, aggregate_id, sequence) VALUES (\(eventID), 'x', 1)")
            }
        }
    }

    @Test("graceful shutdown finishes the message in hand and acknowledges it; the rest stays pending for others")
    func gracefulShutdown() async throws {
        let world = try await MessagingHarness.make()
        try await world.append(count: 5, writers: 1, aggregates: 1)
        let relay = Task { try await world.relay().run() }
        // All five are in the stream before the consumer's first read, so it receives all of them.
        #expect(try await world.waitUntil("SELECT count(*) FROM messaging.outbox WHERE published_at IS NOT NULL", equals: 5) == 5)
        let handler = SlowHandler()
        var configuration = StreamConsumer<SlowHandler>.Configuration(stream: world.stream, group: "test-group", consumerName: "slow")
        configuration.concurrency = 1
        configuration.block = .milliseconds(100)
        let consumer = StreamConsumer(
            postgres: world.postgres, redis: world.redis, handler: handler, configuration: configuration, logger: TestEnvironment.logger)
        let group = ServiceGroup(configuration: .init(services: [consumer], logger: TestEnvironment.logger))
        let running = Task { try await group.run() }
        try await world.waitUntil(handler.started, reaches: 1)
        let stopping = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(ContinuousClock.now - stopping < .seconds(3), "stops promptly: the event in hand, then at most one blocking read")
        // The event in hand was committed and acknowledged; none after it was started.
        #expect(handler.started.count == 1)
        #expect(try await world.scalar("SELECT count(*) FROM public.effects") == 1)
        let pending = try await world.redis.xpending(world.stream, group: "test-group")
        #expect(pending.count == 4, "the four unstarted events stay pending for another instance")
        await world.stop(relay)
    }

    @Test("graceful shutdown does not wait out a retry backoff")
    func shutdownDuringBackoff() async throws {
        let world = try await MessagingHarness.make()
        try await world.append(count: 1, writers: 1, aggregates: 1)
        let relay = Task { try await world.relay().run() }
        let handler = RecordingHandler(failing: true)
        var configuration = StreamConsumer<RecordingHandler>.Configuration(stream: world.stream, group: "test-group", consumerName: "patient")
        configuration.initialBackoff = .seconds(30)
        configuration.maximumBackoff = .seconds(30)
        configuration.block = .milliseconds(100)
        let consumer = StreamConsumer(
            postgres: world.postgres, redis: world.redis, handler: handler, configuration: configuration, logger: TestEnvironment.logger)
        let group = ServiceGroup(configuration: .init(services: [consumer], logger: TestEnvironment.logger))
        let running = Task { try await group.run() }
        try await world.waitUntil(handler.invocations, reaches: 1)
        try await Task.sleep(for: .milliseconds(200))  // now in its 15-30 s backoff
        let stopping = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(ContinuousClock.now - stopping < .seconds(3))
        #expect(handler.invocations.count == 1)
        #expect(try await world.scalar("SELECT attempts FROM messaging.attempts") == 1, "the failed attempt was counted")
        #expect(try await world.redis.xpending(world.stream, group: "test-group").count == 1, "still pending for another instance")
        await world.stop(relay)
    }
}
