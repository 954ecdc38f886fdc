import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import Messaging
import NIOCore
import NIOHTTP1
import Postgres
import SharedModel

/// Outbound webhooks end to end, against a running `notification serve` and `platform-bench receiver`:
/// creates `--endpoints` endpoints (`<receiver>/hook/<i>`; with `--slow-endpoint` one more at
/// `<receiver>/slow`, which answers after 10 s) through the admin API, then appends `booking.confirmed`
/// envelopes (about 600 bytes) to the service's `messaging.outbox` as a producer would
/// (`Outbox.appendExisting`, stream:booking). The service's relay publishes them, its fan-out creates
/// one delivery per endpoint, its dispatcher POSTs them; the receiver records each delivery's latency:
/// received - `occurred_at`, which is the moment of the append (so: appended -> received).
///
/// - steady (default): `--rate` events/s (offered deliveries/s = rate x endpoints), appended in one
///   transaction per 10 ms tick, for `--seconds`; then waits until the receiver counted every healthy
///   delivery (at most `--drain-timeout`, and not after `--stall-timeout` without a new one). Rate = healthy deliveries / (last received - first
///   received); p50/p99 of every healthy delivery.
/// - `--ceiling`: closed loop: appends whenever fewer than `--window` healthy deliveries are
///   outstanding (appended x endpoints - received), for `--seconds`; rate = deliveries received
///   between the end of the first second and the end / (seconds - 1): the most the service delivers
///   with a bounded backlog. Its latencies include the queueing the window allows (~ window / rate).
///
/// Before measuring, `--warmup` seconds of closed loop to endpoints of its own (`<receiver>/warm/<i>`,
/// paused once their deliveries arrived, or the wait gave up), not counted. Afterwards every endpoint
/// of the run is paused too, so later runs deliver to their own endpoints only (a paused endpoint's
/// pending deliveries stay pending).
///
/// Prints `<label>_deliveries_per_second=<n>`, `<label>_deliveries_p50=<ms> ms p99=<ms> ms` and
/// `<label>_counts ...` (label `notification` unless `--label`), in the format of `scripts/bench`.
struct NotificationEndToEnd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notification", abstract: "Outbox -> relay -> fan-out -> dispatcher -> receiver: webhook deliveries per second and latency.")
    @Option(help: "The notification service's base URL.") var serviceURL: String
    @Option(help: "The notification service's ADMIN_TOKEN.") var adminToken: String
    @Option(help: "The notification service's Postgres URL (the bench appends to its messaging.outbox).") var databaseURL: String
    @Option(help: "The receiver's base URL (platform-bench receiver).") var receiverURL: String
    @Option(help: "Healthy endpoints (<receiver>/hook/<i>).") var endpoints: Int = 10
    @Option(help: "Events per second appended (steady mode; and the warm-up's rate).") var rate: Int = 300
    @Option(help: "Seconds of appending measured.") var seconds: Int = 10
    @Option(help: "Seconds of warm-up (closed loop, --window) before measuring (0: none).") var warmup: Int = 2
    @Option(help: "Seconds to wait at most for the last deliveries after appending stopped (and for the warm-up's).")
    var drainTimeout: Int = 300
    @Option(help: "Seconds without a new delivery after which the wait for the last ones gives up.") var stallTimeout: Int = 60
    @Flag(help: "Add one endpoint at <receiver>/slow (answers after 10 s): the healthy endpoints' latency should not change.")
    var slowEndpoint = false
    @Flag(help: "Closed loop: keep --window healthy deliveries outstanding; measures the most the service delivers.") var ceiling = false
    @Option(help: "Healthy deliveries outstanding in --ceiling mode.") var window: Int = 200
    @Option(help: "Prefix of the printed metrics.") var label: String = "notification"
    @Option(help: "A tag in the endpoints' descriptions and the events' correlation ids.") var tag: String = String(
        UUID().uuidString.prefix(8).lowercased())

    func validate() throws {
        guard endpoints > 0, rate > 0, seconds > 0, warmup >= 0, drainTimeout > 0, stallTimeout > 0, window >= endpoints else {
            throw ValidationError("endpoints, rate, seconds and the timeouts must be positive, warmup not negative, window >= endpoints")
        }
        guard !ceiling || seconds >= 2 else { throw ValidationError("--ceiling needs at least 2 seconds") }
    }

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var postgresConfiguration = try PostgresClient.Configuration(url: databaseURL)
        postgresConfiguration.maximumConnections = 2
        let postgres = PostgresClient(configuration: postgresConfiguration, logger: logger)
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: 4)
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        do {
            try await drive(NotificationBenchAPI(client: client, serviceURL: serviceURL, adminToken: adminToken, receiverURL: receiverURL), postgres)
        } catch {
            try? await client.shutdown()
            await postgres.shutdown()
            throw error
        }
        try await client.shutdown()
        await postgres.shutdown()
    }

    private func drive(_ api: NotificationBenchAPI, _ postgres: PostgresClient) async throws {
        let cpuStart = processCPUSeconds()
        let appender = OutboxAppender(postgres: postgres, correlationID: "bench-\(tag)")
        try await api.resetStats()
        var warmupLine: String?
        if warmup > 0 {
            // Endpoints of its own (paused afterwards): what it leaves undelivered cannot reach the measured ones.
            var warming: [String] = []
            for index in 0..<endpoints {
                warming.append(try await api.createEndpoint(path: "/warm/\(index)", description: "bench \(tag) warm-up \(index)"))
            }
            let (warm, _) = try await appendClosedLoop(appender, api: api, group: .other, seconds: warmup)
            let arrived = try await api.waitFor(.other, warm * endpoints, timeout: .seconds(drainTimeout), stall: .seconds(stallTimeout))
            for id in warming { try await api.pause(endpoint: id) }
            let count = try await api.counts().other
            warmupLine =
                "\(label)_warmup deliveries=\(warm * endpoints) received=\(count) all_arrived=\(arrived ? "yes" : "no") "
                + "(\(warmup) s of closed loop, window \(window), to endpoints /warm/<i> of their own, paused afterwards)"
        }
        var created: [String] = []
        for index in 0..<endpoints {
            created.append(try await api.createEndpoint(path: "/hook/\(index)", description: "bench \(tag) healthy \(index)"))
        }
        if slowEndpoint {
            created.append(try await api.createEndpoint(path: "/slow", description: "bench \(tag) slow"))
        }
        try await api.resetStats()

        let clock = ContinuousClock()
        let appended: Int
        var ceilingRate: Double?
        let appendStart = clock.now
        if ceiling {
            (appended, ceilingRate) = try await appendClosedLoop(appender, api: api, group: .healthy, seconds: seconds)
        } else {
            appended = try await appendSteadily(appender, rate: rate, seconds: seconds)
        }
        let appendEnd = clock.now
        let expected = appended * endpoints
        let arrived = try await api.waitFor(.healthy, expected, timeout: .seconds(drainTimeout), stall: .seconds(stallTimeout))
        let drainedAfter = clock.now - appendEnd
        let stats = try await api.stats()
        for id in created { try await api.pause(endpoint: id) }
        let cpuSeconds = processCPUSeconds() - cpuStart

        let healthy = stats.healthy
        let span = (healthy.lastReceived ?? 0) - (healthy.firstReceived ?? 0)
        let steadyRate = span > 0 ? Double(healthy.count) / span : 0
        let measured = ceilingRate ?? steadyRate
        let offered =
            ceiling ? "closed loop, window \(window) deliveries" : "\(rate) events/s x \(endpoints) endpoints = \(rate * endpoints) deliveries/s"
        func ms(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "n/a" }
        var lines = [
            "\(label)_deliveries_per_second=\(String(format: "%.0f", measured))",
            "\(label)_deliveries_p50=\(ms(healthy.p50)) ms p99=\(ms(healthy.p99)) ms max=\(ms(healthy.max)) ms "
                + "(appended -> received, healthy endpoints\(ceiling ? "; closed loop: includes the window's queueing" : ""))",
            "\(label)_offered \(offered); appended \(appended) events in \(String(format: "%.2f", (appendEnd - appendStart).timeInterval)) s",
            "\(label)_counts expected=\(expected) received=\(healthy.count) duplicates=\(healthy.duplicates + stats.slow.duplicates) "
                + "endpoints_reached=\(healthy.paths) of \(endpoints) slow_received=\(stats.slow.count) "
                + "all_arrived=\(arrived ? "yes" : "no") drained_after=\(String(format: "%.2f", drainedAfter.timeInterval))s",
            "\(label)_receipts span=\(String(format: "%.2f", span))s rate=\(String(format: "%.0f", steadyRate))/s "
                + "(first -> last healthy receipt)\(ceilingRate.map { String(format: "; closed-loop rate after the first second %.0f/s", $0) } ?? "")",
            "\(label)_client_cpu seconds=\(String(format: "%.2f", cpuSeconds)) (this process, warm-up and drain included)",
        ]
        if let warmupLine { lines.append(warmupLine) }
        if slowEndpoint {
            lines.append(
                "\(label)_slow_endpoint received=\(stats.slow.count) (answered after 10 s each; its backlog stays pending, paused) "
                    + "healthy_p99=\(ms(healthy.p99)) ms")
        }
        let missing = healthy.perPath.filter { $0.value != appended }
        if !missing.isEmpty {
            lines.append("\(label)_incomplete_paths \(missing.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        }
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    /// Appends `rate` events/s for `seconds`, one transaction per 10 ms tick; returns how many.
    private func appendSteadily(_ appender: OutboxAppender, rate: Int, seconds: Int) async throws -> Int {
        let clock = ContinuousClock()
        let start = clock.now
        let total = rate * seconds
        let tick = Duration.milliseconds(10)
        var appended = 0
        var next = start
        while appended < total {
            let elapsed = (clock.now - start).timeInterval
            let target = min(total, Int(elapsed * Double(rate)) + 1)
            if target > appended {
                try await appender.append(target - appended)
                appended = target
            }
            next = next + tick
            if next > clock.now { try await Task.sleep(until: next, clock: clock) }
        }
        return appended
    }

    /// Closed loop for `seconds`: appends while fewer than `--window` deliveries to `group` are
    /// outstanding. Returns the events appended and the deliveries received per second after the
    /// first second (from the first on when shorter than 2 s).
    private func appendClosedLoop(
        _ appender: OutboxAppender, api: NotificationBenchAPI, group: NotificationBenchAPI.PathGroup, seconds: Int
    ) async throws -> (Int, Double) {
        let clock = ContinuousClock()
        let start = clock.now
        let rampEnd = start + .seconds(seconds >= 2 ? 1 : 0)
        let end = start + .seconds(seconds)
        let first = try await api.count(group)
        var appended = 0
        var atRampEnd: (count: Int, at: ContinuousClock.Instant)?
        var received = 0
        while clock.now < end {
            received = try await api.count(group) - first
            if atRampEnd == nil, clock.now >= rampEnd { atRampEnd = (received, clock.now) }
            let room = (window - (appended * endpoints - received)) / endpoints
            if room > 0 {
                let batch = min(room, 200)
                try await appender.append(batch)
                appended += batch
            } else {
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        let finalCount = try await api.count(group) - first
        let now = clock.now
        let from = atRampEnd ?? (0, start)
        return (appended, Double(finalCount - from.count) / (now - from.at).timeInterval)
    }
}

/// Appends `booking.confirmed` envelopes to the outbox (stream:booking), each of a new aggregate,
/// `occurred_at` = now, several in one transaction.
struct OutboxAppender: Sendable {
    let postgres: PostgresClient
    let correlationID: String

    func append(_ count: Int) async throws {
        let now = Date()
        let envelopes = (0..<count).map { _ in Self.envelope(at: now, correlationID: correlationID) }
        try await postgres.withTransaction { transaction in
            for envelope in envelopes { _ = try Outbox.appendExisting(envelope, stream: Streams.booking, in: transaction) }
        }
    }

    /// A `booking.confirmed` like the booking service's (about 600 bytes of JSON).
    static func envelope(at date: Date, correlationID: String) -> EventEnvelope {
        let booking = UUID().uuidString.lowercased()
        let stamp = RFC3339.string(from: date)
        let data: JSONValue = [
            "booking_id": .string(booking), "event_id": .string(UUID().uuidString.lowercased()), "host_id": "host-notification-bench",
            "customer_id": .string("customer-\(booking.prefix(8))"), "seat_ids": ["s00001", "s00002", "s00003", "s00004"],
            "amount": 10_000, "currency": "EUR", "provider_ref": .string("pi_\(booking.replacingOccurrences(of: "-", with: ""))"),
            "confirmed_at": .string(stamp), "event_ends_at": "2027-06-01T22:00:00.000Z",
        ]
        return EventEnvelope(
            type: "booking.confirmed", version: 1, occurredAt: date, aggregateID: booking, sequence: 1, correlationID: correlationID,
            causationID: "evt_\(booking.prefix(18))", producer: .booking, data: data)
    }
}

/// The calls the benchmark makes: the service's admin API and the receiver's stats.
struct NotificationBenchAPI: Sendable {
    let client: HTTPClient
    let serviceURL: String
    let adminToken: String
    let receiverURL: String

    struct Group: Decodable, Sendable {
        let count: Int
        let firstReceived: Double?
        let lastReceived: Double?
        let p50: Double?
        let p99: Double?
        let max: Double?
        let duplicates: Int
        let paths: Int
        let perPath: [String: Int]
        enum CodingKeys: String, CodingKey {
            case count, duplicates, paths
            case firstReceived = "first_received"
            case lastReceived = "last_received"
            case p50 = "p50_ms"
            case p99 = "p99_ms"
            case max = "max_ms"
            case perPath = "per_path"
        }
    }

    struct Stats: Decodable, Sendable {
        let healthy: Group
        let slow: Group
    }

    func createEndpoint(path: String, description: String) async throws -> String {
        struct Created: Decodable {
            let endpointID: String
            enum CodingKeys: String, CodingKey { case endpointID = "endpoint_id" }
        }
        let body = try JSONSerialization.data(withJSONObject: ["url": receiverURL.trimmingSuffix("/") + path, "description": description])
        let (status, answer) = try await send(.POST, serviceURL.trimmingSuffix("/") + "/v1/endpoints", body: Array(body), admin: true)
        guard status == 201 else { throw NotificationBenchError("POST /v1/endpoints answered \(status): \(answer.prefix(300))") }
        return try JSONDecoder().decode(Created.self, from: Data(answer.utf8)).endpointID
    }

    func pause(endpoint: String) async throws {
        let (status, answer) = try await send(.POST, serviceURL.trimmingSuffix("/") + "/v1/endpoints/\(endpoint)/pause", body: [], admin: true)
        guard status == 200 else { throw NotificationBenchError("POST /v1/endpoints/\(endpoint)/pause answered \(status): \(answer.prefix(300))") }
    }

    func resetStats() async throws {
        let (status, _) = try await send(.POST, receiverURL.trimmingSuffix("/") + "/stats/reset", body: [])
        guard status == 204 else { throw NotificationBenchError("the receiver's POST /stats/reset answered \(status)") }
    }

    enum PathGroup { case healthy, slow, other }

    /// The receiver's request counts per path group.
    func counts() async throws -> (healthy: Int, slow: Int, other: Int) {
        let (status, answer) = try await send(.GET, receiverURL.trimmingSuffix("/") + "/stats/count", body: nil)
        let numbers = answer.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard status == 200, numbers.count == 3 else {
            throw NotificationBenchError("the receiver's GET /stats/count answered \(status): \(answer.prefix(100))")
        }
        return (numbers[0], numbers[1], numbers[2])
    }

    func stats() async throws -> Stats {
        let (status, answer) = try await send(.GET, receiverURL.trimmingSuffix("/") + "/stats", body: nil)
        guard status == 200 else { throw NotificationBenchError("the receiver's GET /stats answered \(status)") }
        return try JSONDecoder().decode(Stats.self, from: Data(answer.utf8))
    }

    func count(_ group: PathGroup) async throws -> Int {
        let counts = try await counts()
        return switch group {
        case .healthy: counts.healthy
        case .slow: counts.slow
        case .other: counts.other
        }
    }

    /// Waits until the receiver counted `target` requests of `group`; false after `timeout`, or when
    /// `stall` passed without a new one.
    func waitFor(_ group: PathGroup, _ target: Int, timeout: Duration, stall: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        var last = -1
        var progressed = ContinuousClock.now
        while true {
            let now = try await count(group)
            if now >= target { return true }
            if now != last {
                last = now
                progressed = ContinuousClock.now
            }
            guard ContinuousClock.now < deadline, ContinuousClock.now - progressed < stall else { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func send(_ method: HTTPMethod, _ url: String, body: [UInt8]?, admin: Bool = false) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        if admin { request.headers.add(name: "Authorization", value: "Bearer \(adminToken)") }
        let response = try await client.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), String(buffer: answer))
    }
}

struct NotificationBenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
