import Foundation
import Messaging
import Redis
import TestSupport
import Testing

@Suite("Stream trimming")
struct StreamTrimTests {
    @Test("a group that has read nothing keeps every entry, far past the trim length; what every group acknowledged is trimmed")
    func trimsOnlyAcknowledgedEntries() async throws {
        let world = try await MessagingHarness.make()
        try await world.redis.createGroup("idle-group", on: world.stream)
        try await world.append(count: 2_000, writers: 8, aggregates: 100)
        let relay = Task { try await world.relay(maxStreamLength: 100, maintenanceInterval: .milliseconds(50)).run() }
        #expect(try await world.waitUntil("SELECT count(*) FROM messaging.outbox WHERE published_at IS NOT NULL", equals: 2_000) == 2_000)
        // Several maintenance passes.
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await world.redis.send("XLEN", RedisArgument(world.stream)).integer == 2_000)

        // Once the group has read and acknowledged everything, the entries go.
        let read = try await world.redis.send([
            "XREADGROUP", "GROUP", "idle-group", "reader", "COUNT", "5000", "STREAMS", RedisArgument(world.stream), ">",
        ])
        let entries = try #require(read.array?.first?.array?.last?.array)
        #expect(entries.count == 2_000)
        // Acknowledge all but the newest 300: those must survive any trim.
        let ids = entries.compactMap { $0.array?.first?.string }
        try await world.redis.xack(world.stream, group: "idle-group", ids: Array(ids.prefix(1_700)))
        var length = 2_000
        let deadline = ContinuousClock.now + .seconds(10)
        while length >= 1_000, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            length = Int(try await world.redis.send("XLEN", RedisArgument(world.stream)).integer ?? -1)
        }
        #expect(length < 1_000)
        let kept = try await world.redis.xrange(world.stream, from: ids[1_700])
        #expect(kept.count == 300)
        await world.stop(relay)
    }
}
