import Foundation
import Logging
import Redis
import TestSupport
import Testing

@testable import Notification

@Suite("Endpoint rate limits: shared by every instance through Redis, each process's own without it")
struct EndpointRateLimiterTests {
    static func milliseconds(_ duration: Duration) -> Double { duration.timeInterval * 1_000 }

    @Test(
        "two instances on one Redis take an endpoint's 10/s slots in turn, 100 ms apart whoever asks; a wait past the longest reserves nothing; another endpoint has its own slots"
    )
    func instancesShareSlots() async throws {
        let (redisA, redisB) = (try RedisClient.forTests(connections: 2), try RedisClient.forTests(connections: 2))
        let a = EndpointRateLimiter(redis: redisA, logger: TestEnvironment.logger)
        let b = EndpointRateLimiter(redis: redisB, logger: TestEnvironment.logger)
        let (endpoint, other) = (UUID(), UUID())
        // Each client connects on its first call: done here, on an endpoint of its own, so that slot
        // 0's call is no slower than the rest (under the full suite a first call took 56 ms longer).
        for limiter in [a, b] { _ = await limiter.reserve(UUID(), perSecond: 10, maximumWait: .seconds(1)) }
        let origin = ContinuousClock.now
        // When each reserved slot starts, from the origin: the moment it was asked plus its wait. The
        // call's own latency blurs that by up to its length, so slots 100 ms apart are checked to 40 ms.
        var starts: [Double] = []
        for index in 0..<12 {
            let asked = ContinuousClock.now
            guard case .now(let wait) = await (index.isMultiple(of: 2) ? a : b).reserve(endpoint, perSecond: 10, maximumWait: .seconds(10))
            else {
                Issue.record("attempt \(index) was not reserved")
                return
            }
            starts.append(Self.milliseconds(asked - origin + wait))
        }
        for (index, start) in starts.enumerated() {
            #expect(abs(start - starts[0] - Double(index) * 100) < 40, "slot \(index) starts at \(start) ms, slot 0 at \(starts[0]) ms")
        }
        // The next slot starts 1,200 ms after the first: beyond a longest wait of 500 ms, so the
        // attempt is told to come back then, and that slot stays free for the next one to take.
        let asked = ContinuousClock.now
        let refused = await a.reserve(endpoint, perSecond: 10, maximumWait: .milliseconds(500))
        guard case .later(let after) = refused else {
            Issue.record("an attempt 1.2 s out was reserved: \(refused)")
            return
        }
        #expect(abs(Self.milliseconds(asked - origin + after) - starts[0] - 1_200) < 40, "told to come back after \(after)")
        let askedAgain = ContinuousClock.now
        guard case .now(let wait) = await b.reserve(endpoint, perSecond: 10, maximumWait: .seconds(10)) else {
            Issue.record("the free slot was not reserved")
            return
        }
        #expect(abs(Self.milliseconds(askedAgain - origin + wait) - starts[0] - 1_200) < 40)
        #expect(await b.reserve(other, perSecond: 10, maximumWait: .seconds(1)) == .now(wait: .zero))
        // The key goes away a second after its last slot (1.3 s ahead of the first).
        let ttl = try await redisA.send(["PTTL", RedisArgument("notification:rate:\(endpoint.lowercasedString)")]).integer ?? -2
        #expect(ttl > 1_000 && ttl <= 2_400, "PTTL \(ttl)")
        await redisA.shutdown()
        await redisB.shutdown()
    }

    @Test("without a limit nothing waits; an unreachable Redis leaves each process spacing its own attempts")
    func fallsBackToTheProcess() async throws {
        let unreachable = try RedisClient.forTests(url: "redis://127.0.0.1:1", connections: 1, maximumWait: .milliseconds(200))
        let limiter = EndpointRateLimiter(redis: unreachable, logger: TestEnvironment.logger)
        let endpoint = UUID()
        #expect(await limiter.reserve(endpoint, perSecond: nil, maximumWait: .seconds(1)) == .now(wait: .zero))
        #expect(await limiter.reserve(endpoint, perSecond: 0, maximumWait: .seconds(1)) == .now(wait: .zero))
        let first = await limiter.reserve(endpoint, perSecond: 4, maximumWait: .seconds(1))
        let second = await limiter.reserve(endpoint, perSecond: 4, maximumWait: .seconds(1))
        #expect(first == .now(wait: .zero))
        guard case .now(let wait) = second else {
            Issue.record("the second attempt was not reserved: \(second)")
            return
        }
        #expect(wait > .milliseconds(150) && wait <= .milliseconds(250), "the second attempt waits a quarter second: \(wait)")
        await unreachable.shutdown()
    }
}
