import ArgumentParser
import AsyncHTTPClient
import Foundation
import Histogram
import NIOCore
import SharedModel
import Synchronization

/// `platform-bench open-loop`: requests arrive at a fixed rate whatever the service does, the way
/// users arrive, and each one's latency counts from the moment it was due, not from the moment it
/// was sent. A closed loop (wrk, `platform-bench saga`) sends the next request only after an answer,
/// so when the service stalls it stops asking and the stall is missing from its percentiles
/// (coordinated omission); here a stalled service finds the requests queued behind the stall, and
/// their waiting counts.
///
/// Arrival `i` is due at `start + i / rate` (evenly spaced). The driver (`LoopDriver`: one
/// event-loop thread, keep-alive connections, no task or thread hop per request, so it costs the
/// services little CPU) starts every arrival that is due, unless `--max-in-flight` arrivals are
/// outstanding: then it waits for one to end, and the arrivals it holds back keep their due time
/// (their wait is counted). Latencies go into HDR histograms (microseconds, 3 significant digits):
/// `latency` from due to answered (the one to judge), `service` from sent to answered (what the
/// services alone took), and each step's own time.
///
/// Scenarios (the same calls as `platform-bench saga`):
/// - `webhooks`: one signed Stripe `payment_intent.succeeded` per arrival (its own evt_/pi_ ids and
///   booking id, padded to `--body-bytes`; all built and signed before the clock starts, so a run
///   lasts at most 240 s), POST /v1/webhooks/stripe of payments-webhook; 200 and a fresh `accepted`
///   is a success.
/// - `bookings`: a hold of one or two seats (blocks handed out once each, as in the saga bench),
///   then its conversion, POST /v1/holds + POST /v1/bookings of booking. A 409 on the hold is a
///   conflict, counted apart.
/// - `saga`: hold, booking and the booking's signed webhook; the confirmation (asynchronous) is
///   measured afterwards in SQL by `scripts/bench` over the printed window.
///
/// Only arrivals due inside the measured window (after `--warmup`) are recorded; the run waits for
/// every answer before it reports. Output: `open_loop_*` lines and, with `--json FILE`, one JSON
/// object appended to FILE as a line (what `scripts/bench` collects for its charts).
struct OpenLoop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open-loop",
        abstract: "A fixed arrival rate against the services: latency from each request's due time (coordinated omission corrected), HDR histograms.")

    enum Scenario: String, ExpressibleByArgument, CaseIterable, Sendable {
        case webhooks, bookings, saga
    }

    @Option(help: "webhooks, bookings or saga.") var scenario: Scenario
    @Option(help: "Arrivals per second.") var rate: Double
    @Option(help: "Seconds measured (after the warm-up).") var seconds: Int = 10
    @Option(help: "Seconds of arrivals at the same rate before the measured window (sent, not recorded).") var warmup: Int = 2
    @Option(help: "Requests outstanding at most; further arrivals wait (their wait counts).") var maxInFlight: Int = 512
    @Option(help: "The booking service's base URL (bookings, saga).") var bookingURL: String?
    @Option(help: "The payments-webhook service's base URL (webhooks, saga).") var webhookURL: String?
    @Option(help: "The booking service's ADMIN_TOKEN (creates the events).") var adminToken: String = ""
    @Option(help: "A client API key of the booking service.") var apiKey: String = ""
    @Option(help: "A Stripe webhook secret of payments-webhook, whsec_... as is.") var stripeSecret: String = ""
    @Option(help: "Seats of each event created for the run.") var seatsPerEvent: Int = 10_000
    @Option(help: "Seat price in minor units (EUR).") var price: Int = 2_500
    @Option(help: "Webhook body length in bytes (webhooks: padded with a description).") var bodyBytes: Int = 1_024
    @Option(help: "Makes customer ids, idempotency keys and provider ids unique to this run.") var tag: String =
        String(UUID().uuidString.prefix(8).lowercased())
    @Option(help: "A label for the run in the output and the JSON (e.g. 0.8 for 80% of capacity).") var label: String = ""
    @Option(help: "Appends the run's result as one JSON line to this file.") var json: String?

    func validate() throws {
        guard rate > 0, rate <= 100_000 else { throw ValidationError("rate must be above 0 and at most 100000 per second") }
        guard seconds > 0, warmup >= 0, maxInFlight > 0 else { throw ValidationError("seconds and max-in-flight must be positive") }
        guard (3...99_999).contains(seatsPerEvent) else { throw ValidationError("seats-per-event must be 3 to 99999") }
        switch scenario {
        case .webhooks:
            // Signed before the run: payments-webhook accepts a timestamp up to 300 s old.
            guard seconds + warmup <= 240 else { throw ValidationError("webhooks runs last at most 240 s (warm-up included)") }
            guard webhookURL != nil, !stripeSecret.isEmpty else { throw ValidationError("webhooks needs --webhook-url and --stripe-secret") }
        case .bookings:
            guard bookingURL != nil, !adminToken.isEmpty, !apiKey.isEmpty else {
                throw ValidationError("bookings needs --booking-url, --admin-token and --api-key")
            }
        case .saga:
            guard bookingURL != nil, webhookURL != nil, !adminToken.isEmpty, !apiKey.isEmpty, !stripeSecret.isEmpty else {
                throw ValidationError("saga needs --booking-url, --webhook-url, --admin-token, --api-key and --stripe-secret")
            }
        }
    }

    func run() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: maxInFlight + 4)
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(60))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let outcome: Result<Void, any Error>
        do {
            try await drive(client)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        try? await client.shutdown()
        try outcome.get()
    }

    private func drive(_ client: HTTPClient) async throws {
        let api = SagaAPI(
            client: client, bookingURL: (bookingURL ?? "").trimmingSuffix("/"), webhookURL: (webhookURL ?? "").trimmingSuffix("/"),
            adminToken: adminToken, apiKey: apiKey, stripeSecret: stripeSecret)
        let schedule = OpenLoopSchedule(rate: rate, warmup: .seconds(warmup), seconds: .seconds(seconds), maxInFlight: maxInFlight)
        let arrivals = schedule.arrivals
        var primed = 0
        var seats: SeatBlocks?
        if scenario != .webhooks {
            // Two-seat blocks, the last seat of each event kept for the priming hold.
            let blocksPerEvent = (seatsPerEvent - 1) / 2
            let eventCount = (arrivals + blocksPerEvent - 1) / blocksPerEvent
            let events = try await api.createEvents(count: eventCount, seats: seatsPerEvent, price: price)
            try await api.prime(events: events, seat: SagaEndToEnd.seatID(seatsPerEvent), customer: "open-\(tag)-prime")
            primed = events.count
            seats = SeatBlocks(events: events, blocksPerEvent: blocksPerEvent)
        }
        // The webhooks are built and signed before the clock starts (the driver's CPU is the
        // services' CPU on a small machine); the run is short enough for their timestamps.
        var webhooks: [(body: [UInt8], signature: String)] = []
        if scenario == .webhooks {
            let padding = padding()
            webhooks.reserveCapacity(arrivals)
            for sequence in 0..<arrivals {
                let booked = SagaAPI.Booked(bookingID: UUID().uuidString.lowercased(), amount: 5_000, currency: "USD")
                webhooks.append(api.signed(booking: booked, reference: "\(tag)o\(sequence)", description: padding))
            }
        }
        let requests = webhooks.map(OpenLoopExchanges.webhook)
        let (scenario, tag, price) = (self.scenario, self.tag, Int64(self.price))
        let targets = [try target(bookingURL), try target(webhookURL)]
        let wallStart = Date()
        let clockAtWallStart = ContinuousClock.now
        let run = try await LoopDriver.run(targets: targets, schedule: schedule) { sequence in
            switch scenario {
            case .webhooks:
                return OpenLoopExchanges.Webhook(requests[sequence])
            case .bookings, .saga:
                guard let (event, seatIDs) = seats?.next() else { return nil }
                return OpenLoopExchanges.Booking(
                    api: api, event: event, seats: seatIDs, sequence: sequence, tag: tag, price: price, pays: scenario == .saga)
            }
        }
        func epoch(_ instant: ContinuousClock.Instant) -> Double { wallStart.timeIntervalSince1970 + (instant - clockAtWallStart).timeInterval }
        let (record, windowStart, end, finished, cpuSeconds) = (run.record, run.windowStart, run.end, run.finished, run.driverCPUSeconds)
        let report = OpenLoopReport(
            scenario: scenario.rawValue, label: label, rate: rate, seconds: seconds, warmup: warmup, maxInFlight: maxInFlight,
            windowStart: epoch(windowStart), windowEnd: epoch(end),
            lastAnswerAfterEnd: max(0, (finished - end).timeInterval), driverCPUSeconds: cpuSeconds, primedEvents: primed,
            cores: ProcessInfo.processInfo.activeProcessorCount, record: record)
        for message in record.messages.prefix(5) { FileHandle.standardError.write(Data("open-loop: \(message)\n".utf8)) }
        FileHandle.standardOutput.write(Data(report.text().utf8))
        if let json {
            let line = try JSONSerialization.data(withJSONObject: report.json(), options: [.sortedKeys]) + Data("\n".utf8)
            let url = URL(fileURLWithPath: json)
            if !FileManager.default.fileExists(atPath: json), !FileManager.default.createFile(atPath: json, contents: nil) {
                throw SagaBenchError("cannot create \(json)")
            }
            let handle = try FileHandle(forWritingTo: url)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        }
    }

    /// Host and port of a service's `http://` base URL (a placeholder when the scenario does not call it).
    private func target(_ url: String?) throws -> (host: String, port: Int) {
        guard let url else { return ("127.0.0.1", 9) }
        guard let components = URLComponents(string: url), let host = components.host else {
            throw ValidationError("not a base URL: \(url)")
        }
        // The driver speaks plain HTTP/1.1: it drives local services, as the benchmarks run them.
        guard components.scheme == "http" else { throw ValidationError("open-loop drives http:// services only, not \(url)") }
        return (host, components.port ?? 80)
    }

    /// A description that pads a webhook body to about `--body-bytes`.
    private func padding() -> String {
        let probe = SagaAPI.stripeEvent(
            booking: .init(bookingID: UUID().uuidString.lowercased(), amount: 5_000, currency: "USD"), reference: "\(tag)x00000000",
            created: 1_800_000_000, description: "")
        return String(repeating: "x", count: max(0, bodyBytes - probe.count))
    }
}

/// The open loop's timing: arrival `i` is due at `start + i / rate`; the arrivals due inside the
/// measured window (after the warm-up) are recorded. `LoopDriver` runs it.
struct OpenLoopSchedule: Sendable {
    let rate: Double
    let warmup: Duration
    let seconds: Duration
    /// Arrivals outstanding at most; a due arrival beyond them waits for one to end (its wait counts).
    let maxInFlight: Int

    /// What a run recorded, and when (the window, and when its last answer came).
    struct Run: Sendable {
        let record: OpenLoopRecord
        let windowStart: ContinuousClock.Instant
        let end: ContinuousClock.Instant
        let finished: ContinuousClock.Instant
        /// The process's CPU seconds over the window.
        let driverCPUSeconds: Double
    }

    /// Arrivals in all, warm-up included.
    var arrivals: Int { Int((rate * (warmup + seconds).timeInterval).rounded(.up)) }
}

/// What one arrival saw.
enum Arrival {
    struct Result: Sendable {
        enum Outcome: Sendable { case ok, conflict, exhausted, failed(String) }
        var outcome: Outcome = .ok
        /// Each step's own time, in call order (hold, book, webhook; the ones reached).
        var steps: [Duration] = []
        /// What the services created for this arrival: 201 holds and bookings, accepted webhooks.
        var holds = 0
        var bookings = 0
        var webhooks = 0
    }
}

/// The histograms and counts of a run (microseconds).
struct OpenLoopRecord: Sendable {
    var latency = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
    var service = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
    var steps: [Histogram<UInt64>] = []
    var completed = 0
    var conflicts = 0
    var exhausted = 0
    var failures = 0
    /// Arrivals sent more than 1 ms after their due time (the scheduler was late or every slot busy).
    var lateStarts = 0
    var maxStartDelay = Duration.zero
    var messages: [String] = []
    var perSecond: [Int: Int] = [:]
    /// Each recorded success's due time (milliseconds into the window), latency and steps' times
    /// (microseconds): whether the slowest answers came together, in a stall, or spread over the run,
    /// and in which step they waited.
    var timeline: [(dueMillis: Int, latency: UInt64, steps: [UInt64])] = []
    /// Over every arrival, warm-up included (what the services' own counts must match).
    var servedHolds = 0
    var servedBookings = 0
    var servedWebhooks = 0
    var failuresInWarmup = 0

    mutating func add(
        _ result: Arrival.Result, due: ContinuousClock.Instant, sent: ContinuousClock.Instant, done: ContinuousClock.Instant, recorded: Bool,
        windowStart: ContinuousClock.Instant
    ) {
        servedHolds += result.holds
        servedBookings += result.bookings
        servedWebhooks += result.webhooks
        guard recorded else {
            if case .failed(let message) = result.outcome {
                failuresInWarmup += 1
                if messages.count < 5 { messages.append(message) }
            }
            return
        }
        switch result.outcome {
        case .ok:
            completed += 1
            latency.record(Self.micros(done - due))
            timeline.append((Int(((due - windowStart) / .milliseconds(1)).rounded(.down)), Self.micros(done - due), result.steps.map(Self.micros)))
            service.record(Self.micros(done - sent))
            for (index, step) in result.steps.enumerated() {
                while steps.count <= index { steps.append(Histogram<UInt64>(numberOfSignificantValueDigits: .three)) }
                steps[index].record(Self.micros(step))
            }
            perSecond[Int((done - windowStart) / .seconds(1)), default: 0] += 1
        case .conflict: conflicts += 1
        case .exhausted: exhausted += 1
        case .failed(let message):
            failures += 1
            if messages.count < 5 { messages.append(message) }
        }
        let delay = sent - due
        if delay > .milliseconds(1) { lateStarts += 1 }
        maxStartDelay = max(maxStartDelay, delay)
    }

    static func micros(_ duration: Duration) -> UInt64 {
        UInt64(max(1, (duration / .microseconds(1)).rounded()))
    }

    /// When the answers slower than `threshold` (microseconds) were due: how many there were, how many
    /// `windowMillis` windows of the run they fall in, the `busiest` windows (start in milliseconds
    /// into the run, how many), most first, and the median time of each step among them. A stall puts
    /// them in a few windows; queueing spread over the run puts them in many.
    func tail(above threshold: UInt64, windowMillis: Int = 100, busiest: Int = 5) -> OpenLoopTail {
        var windows: [Int: Int] = [:]
        var steps: [[UInt64]] = []
        for sample in timeline where sample.latency > threshold {
            windows[sample.dueMillis / windowMillis, default: 0] += 1
            for (index, time) in sample.steps.enumerated() {
                if steps.count <= index { steps.append([]) }
                steps[index].append(time)
            }
        }
        let ranked = windows.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        return OpenLoopTail(
            count: windows.values.reduce(0, +), windows: windows.count, windowMillis: windowMillis,
            busiest: ranked.prefix(busiest).map { (startMillis: $0.key * windowMillis, count: $0.value) },
            stepMedians: steps.map { $0.sorted()[$0.count / 2] })
    }
}

/// The answers above a latency (usually the run's p99), by when they were due.
struct OpenLoopTail: Sendable {
    let count: Int
    let windows: Int
    let windowMillis: Int
    let busiest: [(startMillis: Int, count: Int)]
    /// Each step's median time among them (microseconds), in call order.
    let stepMedians: [UInt64]

    func text(stepNames: [String]) -> String {
        let listed = busiest.map { String(format: "%.1fs:%d", Double($0.startMillis) / 1_000, $0.count) }.joined(separator: ",")
        let steps = zip(stepNames, stepMedians).map { "\($0)_p50=" + String(format: "%.2f", Double($1) / 1_000) }
        return (["count=\(count) windows_\(windowMillis)ms=\(windows) busiest=\(listed.isEmpty ? "-" : listed)"] + steps).joined(separator: " ")
    }

    func json(stepNames: [String]) -> [String: Any] {
        var steps: [String: Any] = [:]
        for (name, median) in zip(stepNames, stepMedians) { steps[name] = Double(median) / 1_000 }
        return [
            "count": count, "windows": windows, "window_ms": windowMillis, "busiest": busiest.map { [$0.startMillis, $0.count] },
            "steps_p50_ms": steps,
        ]
    }
}

/// What `open-loop` prints and writes.
struct OpenLoopReport {
    let scenario: String
    let label: String
    let rate: Double
    let seconds: Int
    let warmup: Int
    let maxInFlight: Int
    let windowStart: Double
    let windowEnd: Double
    let lastAnswerAfterEnd: Double
    let driverCPUSeconds: Double
    let primedEvents: Int
    let cores: Int
    let record: OpenLoopRecord

    static let quantiles: [(name: String, percentile: Double)] = [
        ("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("max", 100),
    ]

    var stepNames: [String] {
        switch scenario {
        case "webhooks": return ["webhook"]
        case "bookings": return ["hold", "book"]
        default: return ["hold", "book", "webhook"]
        }
    }

    var throughput: Double { Double(record.completed) / Double(seconds) }

    /// The answers slower than the run's p99, by when they were due.
    var tailAboveP99: OpenLoopTail {
        record.tail(above: record.latency.totalCount == 0 ? .max : record.latency.valueAtPercentile(99))
    }

    static func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double {
        histogram.totalCount == 0 ? .nan : Double(percentile >= 100 ? histogram.max : histogram.valueAtPercentile(percentile)) / 1_000
    }

    static func format(_ value: Double) -> String { value.isNaN ? "n/a" : String(format: "%.2f", value) }

    func text() -> String {
        func line(_ histogram: Histogram<UInt64>) -> String {
            Self.quantiles.map { "\($0.name)=\(Self.format(Self.ms(histogram, $0.percentile)))" }.joined(separator: " ")
        }
        let steps = zip(stepNames, record.steps).map { "\($0)_p50=\(Self.format(Self.ms($1, 50))) \($0)_p99=\(Self.format(Self.ms($1, 99)))" }
        let lowest = (0..<seconds).map { record.perSecond[$0, default: 0] }.min() ?? 0
        return """
            open_loop scenario=\(scenario) label=\(label.isEmpty ? "-" : label) rate=\(String(format: "%.0f", rate))/s \
            seconds=\(seconds) warmup=\(warmup) max_in_flight=\(maxInFlight) cores=\(cores)
            open_loop_throughput=\(String(format: "%.0f", throughput)) completed=\(record.completed) failures=\(record.failures) \
            conflicts=\(record.conflicts) exhausted=\(record.exhausted) lowest_second=\(lowest)
            open_loop_latency_ms \(line(record.latency)) (due -> answered, coordinated omission corrected)
            open_loop_service_ms \(line(record.service)) (sent -> answered)
            open_loop_steps_ms \(steps.joined(separator: " "))
            open_loop_tail_above_p99 \(tailAboveP99.text(stepNames: stepNames)) (by due time into the window; their steps' medians in ms)
            open_loop_schedule late_starts=\(record.lateStarts) max_start_delay_ms=\(Self.format(record.maxStartDelay.timeInterval * 1_000)) \
            last_answer_after_end=\(String(format: "%.3f", lastAnswerAfterEnd))s driver_cpu_cores=\(String(format: "%.2f", driverCPUSeconds / Double(seconds)))
            open_loop_served holds=\(record.servedHolds) bookings=\(record.servedBookings) webhooks=\(record.servedWebhooks) \
            failures_in_warmup=\(record.failuresInWarmup) (every arrival, warm-up included)
            open_loop_window start=\(String(format: "%.6f", windowStart)) end=\(String(format: "%.6f", windowEnd)) primed_events=\(primedEvents)

            """
    }

    func json() -> [String: Any] {
        func quantiles(_ histogram: Histogram<UInt64>) -> [String: Any] {
            var values: [String: Any] = ["count": Int(histogram.totalCount)]
            for (name, percentile) in Self.quantiles {
                let value = Self.ms(histogram, percentile)
                values[name] = value.isNaN ? NSNull() : value
            }
            return values
        }
        var steps: [String: Any] = [:]
        for (name, histogram) in zip(stepNames, record.steps) { steps[name] = quantiles(histogram) }
        return [
            "scenario": scenario, "label": label, "rate": rate, "seconds": seconds, "warmup": warmup, "max_in_flight": maxInFlight,
            "throughput": throughput, "completed": record.completed, "failures": record.failures, "conflicts": record.conflicts,
            "exhausted": record.exhausted, "failures_in_warmup": record.failuresInWarmup, "late_starts": record.lateStarts,
            "max_start_delay_ms": record.maxStartDelay.timeInterval * 1_000, "latency_ms": quantiles(record.latency),
            "service_ms": quantiles(record.service), "steps_ms": steps, "window_start": windowStart, "window_end": windowEnd,
            "driver_cpu_cores": driverCPUSeconds.isNaN ? NSNull() : driverCPUSeconds / Double(seconds), "cores": cores,
            "tail_above_p99": tailAboveP99.json(stepNames: stepNames),
        ]
    }
}

// MARK: - The scenarios' exchanges on the open loop's driver

/// The requests and answers of the scenarios, as `LoopDriver` exchanges (target 0: booking, 1:
/// payments-webhook). Each answer is checked as `platform-bench saga` checks it.
enum OpenLoopExchanges {
    static let booking = 0
    static let payments = 1

    static func webhook(_ signed: (body: [UInt8], signature: String)) -> LoopDriver.Request {
        LoopDriver.Request(
            target: payments, method: .POST, path: "/v1/webhooks/stripe",
            headers: [("Content-Type", "application/json"), ("Stripe-Signature", signed.signature)], body: signed.body)
    }

    /// nil when the answer is a fresh `accepted`, else what was wrong.
    static func refusal(status: Int, body: ByteBuffer) -> String? {
        guard status == 200, let receipt = try? JSONDecoder().decode(SagaAPI.Receipt.self, from: Data(body.readableBytesView)),
            receipt.status == "accepted", !receipt.duplicate
        else { return "POST /v1/webhooks/stripe answered \(status): \(String(buffer: body).prefix(300))" }
        return nil
    }

    /// One pre-signed webhook.
    final class Webhook: LoopDriver.Exchange {
        private let request: LoopDriver.Request
        private(set) var created = (holds: 0, bookings: 0, webhooks: 0)

        init(_ request: LoopDriver.Request) { self.request = request }

        func first() -> LoopDriver.Request { request }

        func next(status: Int, body: ByteBuffer) -> LoopDriver.Next {
            if let refusal = OpenLoopExchanges.refusal(status: status, body: body) { return .done(.failed(refusal)) }
            created.webhooks = 1
            return .done(.ok)
        }
    }

    /// Hold, booking and (for a saga) the booking's signed webhook.
    final class Booking: LoopDriver.Exchange {
        private enum Step { case hold, book, pay }
        private let api: SagaAPI
        private let event: String
        private let seats: [String]
        private let customer: String
        private let key: String
        private let reference: String
        private let price: Int64
        private let pays: Bool
        private var step = Step.hold
        private(set) var created = (holds: 0, bookings: 0, webhooks: 0)

        init(api: SagaAPI, event: String, seats: [String], sequence: Int, tag: String, price: Int64, pays: Bool) {
            self.api = api
            self.event = event
            self.seats = seats
            // A customer per arrival, as wrk's bookings.lua makes one per hold: customers shared by many
            // arrivals would each keep hundreds of unpaid bookings in their held-seat ledger (the product's
            // default limit is 20 seats), and the hold's admission reads the whole ledger.
            self.customer = "open-\(tag)-c\(sequence)"
            self.key = "open-\(tag)-\(sequence)"
            self.reference = "\(tag)o\(sequence)"
            self.price = price
            self.pays = pays
        }

        func first() -> LoopDriver.Request {
            LoopDriver.Request(
                target: OpenLoopExchanges.booking, method: .POST, path: "/v1/holds",
                headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(api.apiKey)")],
                body: api.holdBody(event: event, seats: seats, customer: customer))
        }

        func next(status: Int, body: ByteBuffer) -> LoopDriver.Next {
            let data = Data(body.readableBytesView)
            switch step {
            case .hold:
                if status == 409 { return .done(.conflict) }
                guard status == 201, let held = try? JSONDecoder().decode(SagaAPI.Held.self, from: data) else {
                    return .done(.failed("POST /v1/holds answered \(status): \(String(buffer: body).prefix(300))"))
                }
                created.holds = 1
                step = .book
                return .send(
                    LoopDriver.Request(
                        target: OpenLoopExchanges.booking, method: .POST, path: "/v1/bookings",
                        headers: [
                            ("Content-Type", "application/json"), ("Authorization", "Bearer \(api.apiKey)"), ("Idempotency-Key", key),
                        ],
                        body: Array("{\"hold_id\":\"\(held.holdID)\",\"customer_id\":\"\(customer)\"}".utf8)))
            case .book:
                guard status == 201, let booked = try? JSONDecoder().decode(SagaAPI.Booked.self, from: data) else {
                    return .done(.failed("POST /v1/bookings answered \(status): \(String(buffer: body).prefix(300))"))
                }
                created.bookings = 1
                let expected = price * Int64(seats.count)
                guard booked.amount == expected else {
                    return .done(.failed("booking \(booked.bookingID) costs \(booked.amount), expected \(expected)"))
                }
                guard pays else { return .done(.ok) }
                step = .pay
                return .send(OpenLoopExchanges.webhook(api.signed(booking: booked, reference: reference)))
            case .pay:
                if let refusal = OpenLoopExchanges.refusal(status: status, body: body) { return .done(.failed(refusal)) }
                created.webhooks = 1
                return .done(.ok)
            }
        }
    }
}
