import Foundation
import Redis
import TestSupport
import Testing

@testable import ServiceKit

@Suite("Redis's eviction policy, checked at start-up")
struct RedisEvictionCheckTests {
    @Test("noeviction passes; an evicting policy is found and named; an unreachable Redis is reported unreadable after its attempts")
    func findings() async throws {
        let redis = try RedisClient.forTests(connections: 1)
        #expect(await RedisEvictionCheck(redis: redis, logger: TestEnvironment.logger).check() == .noEviction)
        await redis.shutdown()

        try await DisruptableServers.withExclusiveAccess { servers in
            let disruptable = try RedisClient.forTests(url: servers.redisURL, connections: 1)
            _ = try await disruptable.send(["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
            let finding = await RedisEvictionCheck(redis: disruptable, logger: TestEnvironment.logger).check()
            _ = try await disruptable.send(["CONFIG", "SET", "maxmemory-policy", "noeviction"])
            #expect(finding == .evicts(policy: "allkeys-lru"))
            await disruptable.shutdown()
        }

        let unreachable = try RedisClient.forTests(url: "redis://127.0.0.1:1", connections: 1, maximumWait: .milliseconds(100))
        let started = ContinuousClock.now
        let finding = await RedisEvictionCheck(
            redis: unreachable, logger: TestEnvironment.logger, attempts: 3, retryDelay: .milliseconds(50)
        ).check()
        guard case .unreadable = finding else {
            Issue.record("an unreachable Redis gave \(finding)")
            return
        }
        #expect(ContinuousClock.now - started >= .milliseconds(100), "it retried twice, 50 ms apart")
        await unreachable.shutdown()
    }
}
