import Foundation
import Messaging
import Postgres
import Redis
import SharedModel
import TestSupport
import Testing

@Suite("Stream consumer: claims, dead consumers, deleted entries, errors")
struct ConsumerMaintenanceTests {
    @Test("a retry whose backoff outlasts the visibility timeout keeps its claim: no other consumer handles the entry meanwhile")
    func backoffKeepsTheClaim() async throws {
        let world = try await MessagingHarness.make()
        // The first attempt fails; the retry waits 1-2 s, several visibility timeouts of 300 ms.
        let first = RecordingHandler(failing: true)
        let holder = Task {
            try await world.consumer(first, name: "holder", concurrency: 1, visibilityTimeout: .milliseconds(300), backoff: .seconds(2)).run()
        }
        try await world.append(count: 1, writers: 1, aggregates: 1)
        let relay = Task { try await world.relay().run() }
        try await world.waitUntil(first.invocations, reaches: 1)
        first.failing.set(false)
        let other = RecordingHandler()
        let rival = Task {
            try await world.consumer(other, name: "rival", concurrency: 1, visibilityTimeout: .milliseconds(300)).run()
        }
        #expect(try await world.waitUntil("SELECT count(*) FROM public.effects", equals: 1, timeout: .seconds(10)) == 1)
        #expect(first.invocations.count == 2)
        #expect(other.invocations.count == 0)
        await world.stop(holder, rival, relay)
    }

    @Test("consumer names idle past deadConsumerIdle without pending entries are deleted; one holding entries is kept")
    func deadConsumersAreRemoved() async throws {
        let world = try await MessagingHarness.make()
        try await world.redis.createGroup("test-group", on: world.stream)
        for ghost in ["ghost-1", "ghost-2", "ghost-with-entry"] {
            try await world.redis.send(["XGROUP", "CREATECONSUMER", RedisArgument(world.stream), "test-group", RedisArgument(ghost)])
        }
        try await world.redis.xadd(world.stream, fields: [("envelope", Array("{}".utf8))])
        let reader = try await world.redis.send([
            "XREADGROUP", "GROUP", "test-group", "ghost-with-entry", "COUNT", "1", "STREAMS", RedisArgument(world.stream), ">",
        ])
        #expect(!reader.isNull)
        try await Task.sleep(for: .milliseconds(400))
        let consumer = Task {
            try await world.consumer(RecordingHandler(), name: "alive", visibilityTimeout: .seconds(30), deadConsumerIdle: .milliseconds(300)).run()
        }
        var names: Set<String> = []
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            try await Task.sleep(for: .milliseconds(50))
            names = Set(try await world.redis.xinfoConsumers(world.stream, group: "test-group").map(\.name))
            // The clean-up deletes the idle names one by one: wait for both, not for the first.
        } while (names.contains("ghost-1") || names.contains("ghost-2")) && ContinuousClock.now < deadline
        #expect(!names.contains("ghost-1"))
        #expect(!names.contains("ghost-2"))
        #expect(names.contains("ghost-with-entry"))
        await world.stop(consumer)
    }

    @Test("an entry deleted from the stream while pending becomes a failure dead letter naming stream, group and id")
    func deletedEntriesAreDeadLettered() async throws {
        let world = try await MessagingHarness.make()
        try await world.redis.createGroup("test-group", on: world.stream)
        let id = try await world.redis.xadd(world.stream, fields: [("envelope", Array("{}".utf8))])
        _ = try await world.redis.send(["XREADGROUP", "GROUP", "test-group", "crashed", "COUNT", "1", "STREAMS", RedisArgument(world.stream), ">"])
        try await world.redis.send(["XDEL", RedisArgument(world.stream), RedisArgument(id)])
        let consumer = Task {
            try await world.consumer(RecordingHandler(), name: "rescuer", visibilityTimeout: .milliseconds(200)).run()
        }
        let found = try await world.waitUntil(
            "SELECT count(*) FROM messaging.dead_letters WHERE kind = 'failure' AND event_type = 'deleted'", equals: 1, timeout: .seconds(10))
        #expect(found == 1)
        let rows = try await world.postgres.query(
            "SELECT stream, consumer, error, envelope->'data'->>'entry_id' FROM messaging.dead_letters WHERE event_type = 'deleted'")
        #expect(try rows.first?.decode(String.self, at: 0) == world.stream)
        #expect(try rows.first?.decode(String.self, at: 1) == "test-group")
        #expect(try rows.first?.decode(String.self, at: 2).contains(id) == true)
        #expect(try rows.first?.decode(String.self, at: 3) == id)
        #expect(try await world.redis.xpending(world.stream, group: "test-group").isEmpty)
        await world.stop(consumer)
    }

    @Test("the age of the group's oldest pending entry is reported from its id while a handler holds it")
    func oldestPendingAge() async throws {
        let world = try await MessagingHarness.make()
        let envelope = try EventEnvelope(
            event: testEvent(), occurredAt: Date(), sequence: 1, correlationID: "test", causationID: nil, producer: world.producer)
        // Added two minutes ago, as its id says.
        let added = UInt64(Date().timeIntervalSince1970 * 1000) - 120_000
        try await world.redis.send([
            "XADD", RedisArgument(world.stream), RedisArgument("\(added)-0"), RedisArgument(Streams.envelopeField),
            RedisArgument(bytes: Array(try envelope.jsonData())),
        ])
        let handler = RecordingHandler(blockFirst: true)
        let consumer = world.consumer(handler, name: "holder", concurrency: 1, visibilityTimeout: .milliseconds(200))
        let task = Task { try await consumer.run() }
        try await world.waitUntil(handler.invocations, reaches: 1)
        let deadline = ContinuousClock.now + .seconds(10)
        while (consumer.oldestPendingAge() ?? 0) < 120 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let age = try #require(consumer.oldestPendingAge())
        #expect(age >= 120 && age < 180, "reported \(age) s")
        await world.stop(task)
    }

    @Test("claim-loop errors are logged and counted by stage, not swallowed")
    func claimErrorsAreCounted() async throws {
        let world = try await MessagingHarness.make()
        // A key of the wrong type: every stream command on it fails.
        try await world.redis.send(["SET", RedisArgument(world.stream), "not a stream"])
        let consumer = world.consumer(RecordingHandler(), name: "broken", visibilityTimeout: .milliseconds(100))
        let task = Task { try await consumer.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while consumer.errorCount(stage: "claim") == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(consumer.errorCount(stage: "claim") > 0)
        #expect(consumer.errorCount(stage: "read") > 0)
        await world.stop(task)
    }
}
