import Foundation
import Postgres
import SharedModel
import TestSupport
import Testing

@testable import Messaging

@Suite("Handler context and injected clock: reads cannot write; stored times come from the WallClock")
struct HandlerContextTests {
    static let instant = Date(timeIntervalSince1970: 1_800_000_000)

    func envelope() throws -> EventEnvelope {
        try EventEnvelope(
            event: testEvent(), occurredAt: Self.instant, sequence: 1, correlationID: "c", causationID: nil, producer: .booking)
    }

    @Test("a handler's read transaction refuses writes; its commit dates the inbox row with the context's clock")
    func readOnlyAndClockedInbox() async throws {
        let postgres = try await migratedDatabase()
        let context = HandlerContext(
            consumer: "context-test", envelope: try envelope(), attempt: 1, postgres: postgres, clock: .fixed(Self.instant),
            clearsAttempts: false)
        let write = await #expect(throws: PostgresError.self) {
            try await context.read { transaction in _ = try transaction.query("CREATE TABLE public.written (id int)") }
        }
        #expect(write?.sqlState == "25006", "read_only_sql_transaction")
        let inbox = try await context.read { transaction in try transaction.query("SELECT count(*) FROM messaging.inbox")[0].decode(Int.self, at: 0) }
        #expect(inbox == 0)

        try await context.commit { _ in }
        let processed = try await postgres.query("SELECT processed_at FROM messaging.inbox WHERE consumer = 'context-test'")
        #expect(try processed[0].decode(Date.self, at: 0) == Self.instant)
        await postgres.shutdown()
    }

    @Test("dead letters are recorded and closed at the injected clock's instants")
    func deadLettersUseTheClock() async throws {
        let postgres = try await migratedDatabase()
        let envelope = try envelope()
        let id = try await postgres.withTransaction { transaction in
            try DeadLetterStore.record(
                kind: .review, stream: "stream:test", consumer: "context-test", envelope: envelope, error: "late payment", attempts: 1,
                firstFailedAt: Self.instant, clock: .fixed(Self.instant), in: transaction)
        }
        let later = Self.instant.adding(.seconds(60))
        let store = DeadLetterStore(postgres: postgres, clock: .fixed(later))
        let recorded = try #require(try await store.entry(id: id))
        #expect(recorded.createdAt == Self.instant && recorded.lastFailedAt == Self.instant)
        #expect(try await store.resolve(id: id, note: "refunded by hand", operatorName: "alice") == .done)
        #expect(try await store.entry(id: id)?.statusChangedAt == later)
        await postgres.shutdown()
    }
}
