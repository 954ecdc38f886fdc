import ConnectionKit
import Postgres
import Redis
import SharedModel
import TestSupport
import Testing

@testable import Messaging

@Suite("Retry backoff")
struct BackoffTests {
    struct NoHandler: StreamHandler {
        func handle(_ envelope: EventEnvelope, context: HandlerContext) async throws {}
    }

    @Test("exponential with full jitter: within [ceiling/2, ceiling], doubling from the initial delay, capped")
    func schedule() throws {
        var configuration = StreamConsumer<NoHandler>.Configuration(stream: "s", group: "g")
        configuration.initialBackoff = .milliseconds(100)
        configuration.maximumBackoff = .seconds(2)
        let consumer = StreamConsumer(
            postgres: PostgresClient(configuration: try .init(url: "postgres://localhost/none"), logger: TestEnvironment.logger),
            redis: RedisClient(configuration: try .init(url: "redis://localhost:1"), logger: TestEnvironment.logger),
            handler: NoHandler(), configuration: configuration, logger: TestEnvironment.logger
        )
        for (attempt, ceiling) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1600), (6, 2000), (30, 2000)] {
            var seen: Set<Int64> = []
            for _ in 0..<200 {
                let delay = consumer.backoff(afterAttempt: attempt).wholeMilliseconds
                #expect(delay >= Int64(ceiling / 2) && delay <= Int64(ceiling), "attempt \(attempt): \(delay) ms")
                seen.insert(delay)
            }
            #expect(seen.count > 5, "jittered, not fixed")
        }
    }
}
