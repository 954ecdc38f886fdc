import ArgumentParser
import Foundation
import Messaging
import Postgres

/// `platform-bench statements`: building ``PostgresStatement``s by interpolation without servers, in
/// the shapes the services send: a booking's first insert (twelve binds and the outbox gate's
/// `WHERE` spliced in), a one-bind lookup, and a filter joined from five conditions. A booking
/// builds eight statements like the first, every request at least one like the second.
struct StatementBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statements",
        abstract: "Building interpolated Postgres statements per statement (no servers).")
    @Option(help: "Statements of each shape per measurement.") var iterations: Int = 100_000
    @Option(help: "Measurements of each shape (the fastest is reported).") var rounds: Int = 5

    func run() async throws {
        let now = Date()
        let ids = (UUID(), UUID(), UUID())
        let seats = ["A-1", "A-2", "A-3", "A-4"]
        let gate = OutboxCondition(token: "gate-\(ids.0)")
        func insert() -> PostgresStatement {
            """
            INSERT INTO booking.bookings (booking_id, event_id, customer_id, hold_id, status, amount, currency, payment_due_at,
                created_at, updated_at, confirmed_at, client_id)
            SELECT \(ids.0), \(ids.1), \("customer-42"), \(ids.2), \("pending_payment"),
                \(Int64(12_000)), \("EUR"), \(now), \(now), \(now), \(Date?.none), \("client-7")
            \(gate.whereOpen)
            """
        }
        func lookup() -> PostgresStatement {
            "SELECT status, amount, currency FROM booking.bookings WHERE booking_id = \(ids.0)"
        }
        func filter() -> PostgresStatement {
            let conditions: [PostgresStatement] = [
                "event_id = \(ids.1)", "customer_id = \("customer-42")", "status = ANY(\(["pending_payment", "confirmed"])::text[])",
                "created_at >= \(now)", "seat_id = ANY(\(seats)::text[])",
            ]
            return "SELECT booking_id FROM booking.bookings WHERE " + .joined(conditions, separator: " AND ") + " LIMIT \(100)"
        }
        let expected = "WHERE current_setting('outbox.gate', true) = $13"
        guard insert().sql.hasSuffix(expected), insert().binds.count == 13, filter().binds.count == 6 else {
            throw ValidationError("the statements were not built as expected: \(insert().sql)")
        }

        MicroBench.write("statements: fastest of \(rounds) rounds of \(iterations) statements each, one thread")
        var bench = MicroBench(iterations: iterations, rounds: rounds)
        bench.measure("booking_insert") { insert().sql.utf8.count }
        bench.measure("lookup") { lookup().binds.count }
        bench.measure("filter") { filter().sql.utf8.count }
        MicroBench.write(bench.summary(prefix: "statements"))
    }
}
