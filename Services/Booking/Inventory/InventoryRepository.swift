import Foundation
import Messaging
import Postgres
import SharedModel

/// Sellable events and their seats, and which seats active bookings take (the `booking` schema).
protocol InventoryRepository: Sendable {
    /// Stores a new event with its seats, and `audit` when given, in one transaction.
    func create(_ event: SellableEvent, audit: AuditRecord?) async throws
    /// The event with its seats, or nil when there is none.
    func event(_ id: EventID) async throws -> SellableEvent?
    /// The seats of `event` in active bookings, with each booking's status.
    func activeBookingSeats(of event: EventID) async throws -> [SeatID: BookingStatus]
}

/// Errors reading stored inventory that no valid write could have produced.
struct InventoryCorrupted: Error, CustomStringConvertible {
    let description: String
}

/// ``InventoryRepository`` on Postgres.
struct PostgresInventoryRepository: InventoryRepository {
    let postgres: PostgresClient

    func create(_ event: SellableEvent, audit: AuditRecord?) async throws {
        let seatIDs = event.seats.map(\.id.rawValue)
        let prices = event.seats.map(\.price)
        let positions = Array(Int32(0)..<Int32(event.seats.count))
        try await postgres.withTransaction { transaction in
            try transaction.query(
                """
                INSERT INTO booking.events (event_id, name, host_id, starts_at, ends_at, time_zone, currency, created_at)
                VALUES (\(event.id.uuid), \(event.name), \(event.hostID.rawValue), \(event.startsAt), \(event.endsAt), \(event.timeZoneName),
                    \(event.currency.code), \(event.createdAt))
                """)
            try transaction.query(
                """
                INSERT INTO booking.seats (event_id, seat_id, price, position)
                SELECT \(event.id.uuid), seat.id, seat.price, seat.position
                FROM unnest(\(seatIDs)::text[], \(prices)::int8[], \(positions)::int4[]) AS seat (id, price, position)
                """)
            try AuditLog.record(audit, in: transaction)
        }
    }

    func event(_ id: EventID) async throws -> SellableEvent? {
        let results = try await postgres.pipeline([
            "SELECT name, host_id, starts_at, ends_at, time_zone, currency, created_at FROM booking.events WHERE event_id = \(id.uuid)",
            "SELECT seat_id, price FROM booking.seats WHERE event_id = \(id.uuid) ORDER BY position",
        ])
        guard let row = results[0].first else { return nil }
        let zoneName = try row.decode(String.self, at: 4)
        guard let timeZone = TimeZone(identifier: zoneName) else { throw InventoryCorrupted(description: "unknown time zone \(zoneName)") }
        let seats = try results[1].map { seat in
            SellableEvent.Seat(id: try SeatID(parsing: try seat.decode(String.self, at: 0)), price: try seat.decode(Int64.self, at: 1))
        }
        return SellableEvent(
            id: id,
            name: try row.decode(String.self, at: 0),
            hostID: try HostID(parsing: try row.decode(String.self, at: 1)),
            startsAt: try row.decode(Date.self, at: 2),
            endsAt: try row.decode(Date.self, at: 3),
            timeZone: timeZone,
            timeZoneName: zoneName,
            currency: try Currency(try row.decode(String.self, at: 5)),
            createdAt: try row.decode(Date.self, at: 6),
            seats: seats
        )
    }

    func activeBookingSeats(of event: EventID) async throws -> [SeatID: BookingStatus] {
        let rows = try await postgres.query(
            """
            SELECT s.seat_id, b.status FROM booking.booking_seats s JOIN booking.bookings b USING (booking_id)
            WHERE s.event_id = \(event.uuid) AND s.released_at IS NULL
            """)
        var seats: [SeatID: BookingStatus] = [:]
        for row in rows {
            let status = try row.decode(String.self, at: 1)
            guard let parsed = BookingStatus(rawValue: status) else { throw InventoryCorrupted(description: "unknown booking status \(status)") }
            seats[try SeatID(parsing: try row.decode(String.self, at: 0))] = parsed
        }
        return seats
    }
}
