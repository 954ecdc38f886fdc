import Foundation
import Messaging
import Postgres
import SharedModel
import TestSupport
import Testing

@Suite("Retention: rows past their retention are deleted in batches, counted; nothing else is")
struct RetentionSweeperTests {
    @Test("inbox rows of the service's consumers older than the retention go, in batches; newer ones and other consumers' stay")
    func inbox() async throws {
        let postgres = try await migratedDatabase()
        let now = Date()
        try await postgres.query(
            """
            INSERT INTO messaging.inbox (consumer, event_id, processed_at)
            SELECT consumer, gen_random_uuid(), \(now) - (n * interval '1 hour')
            FROM unnest(ARRAY['mine', 'theirs']) AS consumer, generate_series(0, 24) AS n
            """)
        // 24 rows of `mine` are older than 30 minutes (1 h to 24 h); 0 h stays.
        let sweeper = RetentionSweeper(
            postgres: postgres, rules: [.inbox(of: ["mine"], retention: .seconds(1800))], logger: TestEnvironment.logger, batchSize: 5,
            clock: .fixed(now))
        #expect(try await sweeper.sweep() == ["messaging.inbox": 24])
        #expect(try await postgres.query("SELECT count(*) FROM messaging.inbox WHERE consumer = 'mine'")[0].decode(Int.self, at: 0) == 1)
        #expect(try await postgres.query("SELECT count(*) FROM messaging.inbox WHERE consumer = 'theirs'")[0].decode(Int.self, at: 0) == 25)
        #expect(try await sweeper.sweep() == ["messaging.inbox": 0])
        await postgres.shutdown()
    }
}
