import Foundation
import Messaging
import Migrations
import Postgres
import SharedModel
import TestSupport
import Testing

/// A fresh, migrated database for a messaging suite.
func migratedDatabase(on server: String? = nil) async throws -> PostgresClient {
    let client = try TestDatabase.client(url: try await TestDatabase.create(prefix: "msg", on: server), connections: 8)
    try await Migrator(client: client, logger: TestEnvironment.logger).migrate()
    return client
}

/// A small event for tests: `booking.expired` of a fresh or given booking.
func testEvent(_ booking: BookingID = BookingID()) -> BookingExpired {
    BookingExpired(bookingID: booking)
}

@Suite("Outbox")
struct OutboxTests {
    @Test("a state change and its event commit together or not at all")
    func atomicity() async throws {
        let postgres = try await migratedDatabase()
        defer { Task { await postgres.shutdown() } }
        try await postgres.query("CREATE TABLE public.state (id uuid PRIMARY KEY)")
        struct Boom: Error {}
        let booking = BookingID()
        await #expect(throws: Boom.self) {
            try await postgres.withTransaction { transaction in
                try transaction.query("INSERT INTO public.state (id) VALUES (\(booking.uuid))")
                try Outbox.append(testEvent(booking), producer: .booking, correlationID: "c", occurredAt: Date(), in: transaction)
                throw Boom()
            }
        }
        let afterRollback = try await postgres.query("SELECT (SELECT count(*) FROM public.state), (SELECT count(*) FROM messaging.outbox)")
        #expect(try afterRollback[0].decode(Int.self, at: 0) == 0)
        #expect(try afterRollback[0].decode(Int.self, at: 1) == 0)

        let envelope = try await postgres.withTransaction { transaction in
            try transaction.query("INSERT INTO public.state (id) VALUES (\(booking.uuid))")
            return try Outbox.append(testEvent(booking), producer: .booking, correlationID: "c", occurredAt: Date(), in: transaction)
        }
        let committed = try await postgres.query("SELECT stream, sequence, envelope->>'sequence', event_type FROM messaging.outbox")
        #expect(committed.count == 1)
        #expect(try committed[0].decode(String.self, at: 0) == Streams.booking)
        #expect(try committed[0].decode(Int64.self, at: 1) == envelope.sequence)
        #expect(try committed[0].decode(String.self, at: 2) == "1")
        #expect(try committed[0].decode(String.self, at: 3) == "booking.expired")
    }

    @Test("several events appended after the caller's statements in one pipeline get consecutive sequences, and fail together")
    func pipelinedAppend() async throws {
        let postgres = try await migratedDatabase()
        defer { Task { await postgres.shutdown() } }
        try await postgres.query("CREATE TABLE public.state (id uuid PRIMARY KEY)")
        let booking = BookingID()
        let (results, envelopes) = try await postgres.withTransaction { transaction in
            try Outbox.append(
                [testEvent(booking), BookingCancelled(bookingID: booking, reason: .customer, refundDue: .zero(.eur))],
                after: ["INSERT INTO public.state (id) VALUES (\(booking.uuid)) RETURNING id"],
                producer: .booking, correlationID: "c", occurredAt: Date(), in: transaction)
        }
        #expect(results.count == 1)
        #expect(try results[0][0].decode(UUID.self, at: 0) == booking.uuid)
        #expect(envelopes.map(\.sequence) == [1, 2])
        #expect(envelopes.map(\.type) == ["booking.expired", "booking.cancelled"])
        // A failing statement in the pipeline (duplicate key) takes the events down with it.
        await #expect(throws: PostgresError.self) {
            try await postgres.withTransaction { transaction in
                try Outbox.append(
                    [testEvent(booking)], after: ["INSERT INTO public.state (id) VALUES (\(booking.uuid))"],
                    producer: .booking, correlationID: "c", occurredAt: Date(), in: transaction)
            }
        }
        let rows = try await postgres.query("SELECT count(*) FROM messaging.outbox")
        #expect(try rows[0].decode(Int.self, at: 0) == 2)
    }

    @Test("sequences increase per producer and aggregate, also under concurrent writers")
    func sequences() async throws {
        let postgres = try await migratedDatabase()
        defer { Task { await postgres.shutdown() } }
        let booking = BookingID()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    _ = try await postgres.withTransaction { transaction in
                        try Outbox.append(testEvent(booking), producer: .booking, correlationID: "c", occurredAt: Date(), in: transaction)
                    }
                }
            }
            try await group.waitForAll()
        }
        let rows = try await postgres.query("SELECT sequence FROM messaging.outbox ORDER BY position")
        #expect(try rows.map { try $0.decode(Int64.self, at: 0) } == Array(1...40))
    }
}
