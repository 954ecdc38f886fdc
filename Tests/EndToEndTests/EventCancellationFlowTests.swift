import Foundation
import Glibc
import HTTPTypes
import HummingbirdTesting
import Messaging
import NIOCore
import Postgres
import Redis
import SharedModel
import TestSupport
import Testing

/// A `booking serve` process with a client of its API (restartable with other settings).
struct BookingProcess {
    let process: ServiceProcess
    let client: TestClient

    /// Starts `booking serve` for `system` (DisruptableServers stops it, if still running, before its
    /// servers go to another test).
    static func start(_ system: PaymentsSystem, settings: [String: String] = [:]) async throws -> BookingProcess {
        let port = try freePort()
        let process = try ServiceProcess.start(
            "booking",
            environment: system.started.shared.merging(["PORT": String(port), "API_KEYS": "key", "EVENT_CANCELLATION_BATCH": "10"]) {
                _, new in new
            }
            .merging(settings) { _, new in new },
            port: port)
        #expect(await waitFor("/healthz", port: port, status: 200)?.status == 200, "booking: \(process.output)")
        let client = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(30)))
        client.connect()
        return BookingProcess(process: process, client: client)
    }

    func call(
        _ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, admin: Bool = false, headers extra: HTTPFields = [:]
    )
        async throws -> (status: Int, json: JSONValue?)
    {
        var headers: HTTPFields = [.authorization: admin ? "Bearer admin" : "Bearer key", .contentType: "application/json"]
        for field in extra { headers[field.name] = field.value }
        let response = try await client.execute(.init(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
        return (Int(response.status.code), response.body.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: $0)) })
    }

    func stop(signal: Int32) async {
        process.child.send(signal)
        _ = await process.child.termination(within: .seconds(10))
        await process.child.kill()
        try? await client.shutdown()
    }

    /// Creates an event of `seats` seats (`S1`...) at 2,500 EUR each, starting in 30 days.
    func createEvent(seats: Int) async throws -> String {
        let starts = RFC3339.string(from: Date().addingTimeInterval(30 * 86_400))
        let ends = RFC3339.string(from: Date().addingTimeInterval(30 * 86_400 + 3 * 3600))
        let list = (1...seats).map { #"{"seat_id":"S\#($0)","price":2500}"# }.joined(separator: ",")
        let (status, json) = try await call(
            .post, "/v1/events",
            #"{"name":"Festival","host_id":"host_1","starts_at":"\#(starts)","ends_at":"\#(ends)","time_zone":"Europe/Berlin","currency":"EUR","seats":[\#(list)]}"#,
            admin: true)
        #expect(status == 201)
        return try #require(json?["event_id"]?.stringValue)
    }

    /// Holds seat `S<seat>` for customer `cus_<seat>` and books it; returns the booking id.
    func book(_ event: String, seat: Int) async throws -> String {
        let (_, hold) = try await call(.post, "/v1/holds", #"{"event_id":"\#(event)","seat_ids":["S\#(seat)"],"customer_id":"cus_\#(seat)"}"#)
        let holdID = try #require(hold?["hold_id"]?.stringValue, "hold of S\(seat): \(String(describing: hold))")
        let (status, booked) = try await call(
            .post, "/v1/bookings", #"{"hold_id":"\#(holdID)","customer_id":"cus_\#(seat)"}"#,
            headers: [HTTPField.Name("Idempotency-Key")!: UUID().uuidString])
        #expect(status == 201)
        return try #require(booked?["booking_id"]?.stringValue)
    }
}

/// Runs `body` over `items`, at most `width` at once; returns the results in the items' order.
func concurrently<Item: Sendable, Result: Sendable>(
    _ items: [Item], width: Int = 16, _ body: @escaping @Sendable (Item) async throws -> Result
) async throws -> [Result] {
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        var results = [Result?](repeating: nil, count: items.count)
        var next = 0
        while next < min(width, items.count) {
            let index = next
            group.addTask { (index, try await body(items[index])) }
            next += 1
        }
        while let (index, result) = try await group.next() {
            results[index] = result
            if next < items.count {
                let index2 = next
                group.addTask { (index2, try await body(items[index2])) }
                next += 1
            }
        }
        return results.compactMap { $0 }
    }
}

/// payments-webhook and the provider simulator as processes on the disruptable servers (streams
/// emptied first), with clients of the test's database and of the simulator.
struct PaymentsSystem {
    let started: PaymentsProcesses
    let postgres: PostgresClient
    let simulator: TestClient

    /// Runs `body`; its processes are stopped by ``DisruptableServers`` when the section ends.
    static func run(prefix: String, payments settings: [String: String] = [:], _ body: (PaymentsSystem) async throws -> Void) async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let redis = try RedisClient.forTests(url: servers.redisURL, connections: 1)
            defer { Task { await redis.shutdown() } }
            _ = try await redis.send("DEL", .init(Streams.booking), .init(Streams.payments))
            let started = try await PaymentsProcesses.start(on: servers, prefix: prefix, payments: settings)
            for process in [started.simulator, started.payments] {
                #expect(await waitFor("/healthz", port: process.port, status: 200)?.status == 200, "\(process.name): \(process.output)")
            }
            let postgres = try TestDatabase.client(url: started.databaseURL, connections: 2)
            defer { Task { await postgres.shutdown() } }
            let simulator = TestClient(host: "127.0.0.1", port: started.simulator.port, configuration: .init(timeout: .seconds(30)))
            simulator.connect()
            defer { Task { try? await simulator.shutdown() } }
            try await body(PaymentsSystem(started: started, postgres: postgres, simulator: simulator))
        }
    }

    /// Calls the simulator: its control API takes JSON, its `/v1` API the key.
    func simulatorCall(_ method: HTTPRequest.Method, _ path: String, _ body: String = "{}") async throws -> (Int, JSONValue?) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if path.hasPrefix("/v1/") { headers[.authorization] = "Bearer sk_test_e2e" }
        let response = try await simulator.execute(.init(path, method: method, headers: headers, body: ByteBuffer(string: body)))
        return (Int(response.status.code), response.body.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: $0)) })
    }

    /// Polls `condition` every 100 ms; records an issue naming `what` when `timeout` passes first.
    func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("waited \(timeout) for \(what)")
    }
}

@Suite("Event cancellation over real processes: booking, payments-webhook and the provider simulator")
struct EventCancellationFlowTests {
    @Test(
        "2,000 bookings in every state, the event cancelled, booking killed (-9) mid-way and restarted: every pending booking cancelled, every confirmed one refunded once at the simulator, nothing else touched, holds refused"
    )
    func massCancellationSurvivesKill() async throws {
        try await PaymentsSystem.run(prefix: "e2e_cancel") { system in
            let postgres = system.postgres
            @Sendable func simulatorCall(_ method: HTTPRequest.Method, _ path: String) async throws -> (Int, JSONValue?) {
                try await system.simulatorCall(method, path)
            }
            @Sendable func count(_ statement: PostgresStatement) async throws -> Int { try await postgres.count(statement) }
            func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
                try await system.waitUntil(what, timeout: timeout, condition)
            }

            // 300 bookings that expire: a booking service whose payment window is 2 s.
            var booking = try await BookingProcess.start(system, settings: ["PAYMENT_WINDOW": "2s", "PAYMENT_GRACE": "0s"])
            let event = try await booking.createEvent(seats: 2000)
            let eventID = try #require(UUID(uuidString: event))
            let other = try await booking.createEvent(seats: 20)
            let client = booking
            let expired = try await concurrently(Array(1...300)) { try await client.book(event, seat: $0) }
            try await waitUntil("300 bookings expired") {
                try await count("SELECT count(*) FROM booking.bookings WHERE status = 'expired'") == 300
            }
            await booking.stop(signal: SIGTERM)

            // 1,700 more with the default window: 600 stay pending, 300 are cancelled by their customer,
            // 800 are paid (200 of those cancelled by their customer and refunded); 20 on another event, paid.
            booking = try await BookingProcess.start(system)
            let live = booking
            let rest = try await concurrently(Array(301...2000)) { try await live.book(event, seat: $0) }
            let others = try await concurrently(Array(1...20)) { try await live.book(other, seat: $0) }
            let pending = Array(rest[0..<600])
            let cancelledBefore = Array(rest[600..<900])
            let refundedBefore = Array(rest[900..<1100])
            let confirmed = Array(rest[1100..<1700])
            let paid = refundedBefore + confirmed + others
            try await waitUntil("every booking's payment intent") {
                try await count("SELECT count(*) FROM booking.bookings WHERE status = 'pending_payment' AND payment_provider_ref IS NULL") == 0
            }
            let intents = try await concurrently(paid) { id -> String in
                let rows = try await postgres.query(
                    "SELECT payment_provider_ref FROM booking.bookings WHERE booking_id = \(try #require(UUID(uuidString: id)))")
                return try #require(try rows.first?.decode(String?.self, at: 0))
            }
            _ = try await concurrently(intents) { intent in
                let (status, _) = try await simulatorCall(.post, "/simulator/payment_intents/\(intent)/succeed")
                #expect(status == 200)
            }
            try await waitUntil("820 bookings confirmed") {
                try await count("SELECT count(*) FROM booking.bookings WHERE status = 'confirmed'") == 820
            }
            _ = try await concurrently(refundedBefore + cancelledBefore) { id in
                let seat = try await postgres.query(
                    "SELECT customer_id FROM booking.bookings WHERE booking_id = \(try #require(UUID(uuidString: id)))")
                let customer = try #require(try seat.first?.decode(String.self, at: 0))
                let (status, _) = try await live.call(.post, "/v1/bookings/\(id)/cancel", #"{"customer_id":"\#(customer)"}"#)
                #expect(status == 200)
            }
            try await waitUntil("200 customer refunds completed") {
                try await count("SELECT count(*) FROM booking.bookings WHERE status = 'refunded'") == 200
            }
            let statusBefore = Dictionary(
                uniqueKeysWithValues: try await postgres.query("SELECT booking_id, status, updated_at FROM booking.bookings").map {
                    (
                        try $0.decode(UUID.self, at: 0).uuidString.lowercased(),
                        try $0.decode(String.self, at: 1) + "@" + "\(try $0.decode(Date.self, at: 2))"
                    )
                })

            // The host cancels; booking is killed once part of the work is done, then restarted.
            let (cancelStatus, cancelled) = try await booking.call(
                .post, "/v1/events/\(event)/cancel", #"{"reason":"The venue is closed."}"#, admin: true, headers: [.init("X-Operator")!: "host-ops"])
            #expect(cancelStatus == 202)
            #expect(cancelled?["cancellation"]?["bookings_total"] == 1200)
            var doneAtKill: Int64 = -1
            let killDeadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < killDeadline {
                doneAtKill = try await booking.call(.get, "/v1/events/\(event)").json?["cancellation"]?["bookings_done"]?.integerValue ?? -1
                if doneAtKill >= 100 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            await booking.stop(signal: SIGKILL)
            #expect(doneAtKill >= 100 && doneAtKill < 1200, "killed with \(doneAtKill) of 1,200 bookings done")
            booking = try await BookingProcess.start(system)
            let restarted = booking
            try await waitUntil("the cancellation completed") {
                try await restarted.call(.get, "/v1/events/\(event)").json?["cancellation"]?["completed_at"]?.stringValue != nil
            }
            try await waitUntil("600 refunds succeeded", timeout: .seconds(90)) {
                try await restarted.call(.get, "/v1/events/\(event)").json?["cancellation"]?["refunds"]?["succeeded"] == 600
            }

            let progress = try await booking.call(.get, "/v1/events/\(event)").json?["cancellation"]
            #expect(progress?["bookings_total"] == 1200 && progress?["bookings_done"] == 1200 && progress?["bookings_remaining"] == 0)
            #expect(progress?["refunds"] == ["requested": 0, "succeeded": 600, "failed": 0])
            let statusAfter = Dictionary(
                uniqueKeysWithValues: try await postgres.query("SELECT booking_id, status, updated_at FROM booking.bookings").map {
                    (
                        try $0.decode(UUID.self, at: 0).uuidString.lowercased(),
                        try $0.decode(String.self, at: 1) + "@" + "\(try $0.decode(Date.self, at: 2))"
                    )
                })
            func statuses(_ ids: [String]) -> [String: Int] {
                ids.reduce(into: [:]) { counts, id in counts[String(statusAfter[id]?.split(separator: "@").first ?? "missing"), default: 0] += 1 }
            }
            #expect(statuses(expired) == ["expired": 300])
            #expect(statuses(pending) == ["cancelled": 600])
            #expect(statuses(confirmed) == ["refunded": 600])
            #expect(statuses(cancelledBefore) == ["cancelled": 300])
            #expect(statuses(refundedBefore) == ["refunded": 200])
            #expect(statuses(others) == ["confirmed": 20])
            // Nothing else touched: the bookings that were not pending or confirmed kept their row as it was.
            for id in expired + cancelledBefore + refundedBefore + others {
                #expect(statusAfter[id] == statusBefore[id], "booking \(id) changed")
            }
            #expect(try await count("SELECT count(*) FROM booking.booking_seats WHERE event_id = \(eventID) AND released_at IS NULL") == 0)

            // Exactly one refund at the simulator per paid booking of the event, none for the other event.
            let (_, list) = try await simulatorCall(.get, "/v1/refunds")
            var refundsPerIntent: [String: Int] = [:]
            for refund in list?["data"]?.arrayValue ?? [] {
                refundsPerIntent[refund["payment_intent"]?.stringValue ?? "?", default: 0] += 1
            }
            let eventIntents = Set(intents.prefix(800))
            #expect(refundsPerIntent.count == 800 && Set(refundsPerIntent.keys) == eventIntents)
            #expect(refundsPerIntent.values.allSatisfy { $0 == 1 })
            #expect(try await count("SELECT count(*) FROM booking.refund_requests WHERE reason = 'event_cancellation'") == 600)

            // Afterwards: holds are refused, and the booking service answers as before.
            let (holdStatus, hold) = try await booking.call(.post, "/v1/holds", #"{"event_id":"\#(event)","seat_ids":["S1"],"customer_id":"cus_x"}"#)
            #expect(holdStatus == 409 && hold?["error"]?["code"] == "event_cancelled")
            await booking.stop(signal: SIGTERM)
        }
    }
}
