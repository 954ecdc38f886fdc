import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SharedModel
import Synchronization
import WebhookSignatures

/// The booking saga end to end over HTTP, against a running `booking serve` and `payments-webhook
/// serve` on one database: concurrent workers each loop hold -> booking -> signed Stripe
/// `payment_intent.succeeded` webhook. The saga coordinator (in the booking service) confirms
/// asynchronously; this driver does not wait for it. Afterwards `scripts/bench saga` waits for the
/// confirmations and measures them in SQL (rate, webhook received -> booking confirmed); what is
/// printed here is the client's view: sagas whose webhook was accepted, per second, and each step's
/// latency.
///
/// Seats: the driver creates its own events through the admin API (`--seats-per-event` seats each,
/// enough for `--max-rate` sagas per second over the whole run), primes each with a hold of its last
/// seat (the first hold of an event builds its Redis cache from Postgres), then hands out blocks of two
/// seats from one counter, spread round robin over the events: no two workers ever ask for the same
/// seat. A saga holds the block's first seat or both.
struct SagaEndToEnd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "saga", abstract: "Booking sagas end to end: hold, book, signed webhook (confirmation is measured in SQL afterwards).")
    @Option(help: "The booking service's base URL.") var bookingURL: String
    @Option(help: "The payments-webhook service's base URL.") var webhookURL: String
    @Option(help: "The booking service's ADMIN_TOKEN (creates the events).") var adminToken: String
    @Option(help: "A client API key of the booking service (API_KEYS).") var apiKey: String
    @Option(help: "A Stripe webhook secret of payments-webhook (STRIPE_WEBHOOK_SECRETS), whsec_... as is.") var stripeSecret: String
    @Option(help: "Seconds to measure (after the warm-up).") var seconds: Int = 60
    @Option(help: "Seconds of warm-up before the measured window (sagas run, not counted).") var warmup: Int = 3
    @Option(help: "Concurrent workers, each one saga at a time.") var concurrency: Int = 64
    @Option(help: "Seats of each event created for the run (s00001, s00002, ...).") var seatsPerEvent: Int = 10_000
    @Option(help: "Sagas per second the seat supply is sized for; a faster run runs out of seats (counted, not repeated).")
    var maxRate: Int = 2_000
    @Option(help: "Seat price in minor units (EUR).") var price: Int = 2_500
    @Option(help: "Makes customer ids, idempotency keys and provider ids unique to this run.") var tag: String =
        String(UUID().uuidString.prefix(8).lowercased())
    @Option(help: "Event ids, one a line: with --prepare, where to write them; otherwise the events to use (else created now).")
    var eventsFile: String?
    @Flag(help: "Only create and prime the events (written to --events-file), then exit: the run itself is measured without that work.")
    var prepare = false

    func validate() throws {
        guard seconds > 0, warmup >= 0, concurrency > 0, maxRate > 0 else {
            throw ValidationError("seconds, concurrency and max-rate must be positive")
        }
        guard (3...99_999).contains(seatsPerEvent) else { throw ValidationError("seats-per-event must be 3 to 99999") }
        guard !prepare || eventsFile != nil else { throw ValidationError("--prepare needs --events-file") }
    }

    func run() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency + 4)
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(60))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        do {
            try await drive(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    private func drive(_ client: HTTPClient) async throws {
        let api = SagaAPI(
            client: client, bookingURL: bookingURL.trimmingSuffix("/"), webhookURL: webhookURL.trimmingSuffix("/"), adminToken: adminToken,
            apiKey: apiKey, stripeSecret: stripeSecret)
        // Blocks of two seats per event, the last seat kept for the priming hold.
        let blocksPerEvent = (seatsPerEvent - 1) / 2
        let blocksNeeded = maxRate * (seconds + warmup + 5)
        let eventCount = (blocksNeeded + blocksPerEvent - 1) / blocksPerEvent
        let events: [String]
        if let eventsFile, !prepare {
            events = try String(contentsOfFile: eventsFile, encoding: .utf8).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            guard !events.isEmpty else { throw SagaBenchError("\(eventsFile) lists no events") }
        } else {
            events = try await api.createEvents(count: eventCount, seats: seatsPerEvent, price: price)
            try await api.prime(events: events, seat: Self.seatID(seatsPerEvent), customer: "saga-\(tag)-prime")
        }
        if prepare, let eventsFile {
            try Data((events.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: eventsFile))
            FileHandle.standardOutput.write(
                Data("saga_client_prepared events=\(events.count) seats_per_event=\(seatsPerEvent) (each primed with a hold of its last seat)\n".utf8)
            )
            return
        }
        let seats = SeatBlocks(events: events, blocksPerEvent: blocksPerEvent)

        let clock = ContinuousClock()
        let wallStart = Date()
        let started = clock.now
        let windowStart = started + .seconds(warmup)
        let end = windowStart + .seconds(seconds)
        let tag = self.tag
        let seatPrice = Int64(price)
        // The driver's own CPU over the measured window (so a run can say what the load generator took).
        let cpu = Task {
            try await Task.sleep(until: windowStart, clock: clock)
            let before = processCPUSeconds()
            try await Task.sleep(until: end, clock: clock)
            return processCPUSeconds() - before
        }
        let results = try await withThrowingTaskGroup(of: WorkerResult.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var result = WorkerResult()
                    let customer = "saga-\(tag)-w\(worker)"
                    var sequence = 0
                    while clock.now < end {
                        guard let (event, seatIDs) = seats.next() else {
                            result.exhausted += 1
                            break
                        }
                        sequence += 1
                        let sagaStart = clock.now
                        do {
                            guard let holdID = try await api.hold(event: event, seats: seatIDs, customer: customer, into: &result) else { continue }
                            let holdDone = clock.now
                            let booking = try await api.book(
                                hold: holdID, customer: customer, key: "saga-\(tag)-\(worker)-\(sequence)", into: &result)
                            guard let booking else { continue }
                            if booking.amount != seatPrice * Int64(seatIDs.count) {
                                result.failure("booking \(booking.bookingID) costs \(booking.amount), expected \(seatPrice * Int64(seatIDs.count))")
                            }
                            let bookDone = clock.now
                            guard
                                try await api.pay(
                                    booking: booking, reference: "\(tag)w\(worker)n\(sequence)", into: &result)
                            else { continue }
                            let done = clock.now
                            result.completed += 1
                            if done >= windowStart && done < end {
                                result.windowCompleted += 1
                                result.perSecond[Int((done - windowStart) / .seconds(1)), default: 0] += 1
                            }
                            if sagaStart >= windowStart {
                                result.hold.append(holdDone - sagaStart)
                                result.book.append(bookDone - holdDone)
                                result.webhook.append(done - bookDone)
                                result.saga.append(done - sagaStart)
                            }
                        } catch {
                            result.failure("\(error)")
                        }
                    }
                    return result
                }
            }
            return try await group.reduce(into: WorkerResult()) { $0.merge($1) }
        }
        let finished = clock.now
        let cpuSeconds = (try? await cpu.value) ?? .nan

        func epoch(_ instant: ContinuousClock.Instant) -> String {
            String(format: "%.6f", wallStart.timeIntervalSince1970 + (instant - started).timeInterval)
        }
        let timeline = (0..<seconds).map { String(results.perSecond[$0, default: 0]) }.joined(separator: ",")
        let lowest = (0..<seconds).map { results.perSecond[$0, default: 0] }.min() ?? 0
        for message in results.messages.prefix(5) { FileHandle.standardError.write(Data("saga: \(message)\n".utf8)) }
        FileHandle.standardOutput.write(
            Data(
                """
                saga_client_window start=\(epoch(windowStart)) end=\(epoch(end)) seconds=\(seconds) warmup=\(warmup) \
                last_answer_after_end=\(String(format: "%.3f", (finished - end).timeInterval))s
                saga_client_setup events=\(events.count) seats_per_event=\(seatsPerEvent) concurrency=\(concurrency) tag=\(tag) \
                cores=\(ProcessInfo.processInfo.activeProcessorCount)
                saga_client_cpu seconds=\(String(format: "%.2f", cpuSeconds)) cores=\(String(format: "%.2f", cpuSeconds / Double(seconds))) \
                (the driver's user+sys CPU over the measured window)
                saga_client_completed_per_second=\(String(format: "%.0f", Double(results.windowCompleted) / Double(seconds))) \
                (webhook accepted within the window, the client's count; lowest second \(lowest))
                saga_client_timeline=\(timeline)
                saga_client_steps hold_p50=\(results.hold.ms(0.5)) p99=\(results.hold.ms(0.99)) \
                book_p50=\(results.book.ms(0.5)) p99=\(results.book.ms(0.99)) \
                webhook_p50=\(results.webhook.ms(0.5)) p99=\(results.webhook.ms(0.99)) \
                saga_p50=\(results.saga.ms(0.5)) p99=\(results.saga.ms(0.99)) (sagas started in the window; hold sent -> webhook answered)
                saga_client_counts completed=\(results.completed) window_completed=\(results.windowCompleted) \
                holds_conflicted=\(results.conflicts) failures=\(results.failures) exhausted=\(results.exhausted) \
                hold_201=\(results.holds) booking_201=\(results.bookings) webhook_accepted=\(results.completed)

                """.utf8
            )
        )
    }

    static func seatID(_ number: Int) -> String {
        let digits = String(number)
        return "s" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }
}

/// Blocks of two seats handed out once each, spread round robin over the events.
final class SeatBlocks: Sendable {
    private let events: [String]
    private let blocksPerEvent: Int
    private let counter = Mutex(0)

    init(events: [String], blocksPerEvent: Int) {
        self.events = events
        self.blocksPerEvent = blocksPerEvent
    }

    /// The next block's event and one or two of its seats (random), or nil when every block is gone.
    func next() -> (event: String, seats: [String])? {
        let block = counter.withLock { value in
            defer { value += 1 }
            return value
        }
        let slot = block / events.count
        guard slot < blocksPerEvent else { return nil }
        let first = 2 * slot + 1
        let seats = Bool.random() ? [first] : [first, first + 1]
        return (events[block % events.count], seats.map(SagaEndToEnd.seatID))
    }
}

/// What one worker saw (and, merged, all of them).
struct WorkerResult: Sendable {
    var completed = 0
    var windowCompleted = 0
    var holds = 0
    var bookings = 0
    var conflicts = 0
    var failures = 0
    var exhausted = 0
    var perSecond: [Int: Int] = [:]
    var hold: [Duration] = []
    var book: [Duration] = []
    var webhook: [Duration] = []
    var saga: [Duration] = []
    var messages: [String] = []

    mutating func failure(_ message: String) {
        failures += 1
        if messages.count < 5 { messages.append(message) }
    }

    mutating func merge(_ other: WorkerResult) {
        completed += other.completed
        windowCompleted += other.windowCompleted
        holds += other.holds
        bookings += other.bookings
        conflicts += other.conflicts
        failures += other.failures
        exhausted += other.exhausted
        perSecond.merge(other.perSecond, uniquingKeysWith: +)
        hold += other.hold
        book += other.book
        webhook += other.webhook
        saga += other.saga
        messages += other.messages
    }
}

/// The three services' calls of a saga, and the setup calls.
struct SagaAPI: Sendable {
    let client: HTTPClient
    let bookingURL: String
    let webhookURL: String
    let adminToken: String
    let apiKey: String
    let stripeSecret: String

    struct Booked: Decodable, Sendable {
        let bookingID: String
        let amount: Int64
        let currency: String
        enum CodingKeys: String, CodingKey {
            case bookingID = "booking_id"
            case amount, currency
        }
    }

    struct Held: Decodable {
        let holdID: String
        enum CodingKeys: String, CodingKey { case holdID = "hold_id" }
    }

    private struct Created: Decodable {
        let eventID: String
        enum CodingKeys: String, CodingKey { case eventID = "event_id" }
    }

    struct Receipt: Decodable {
        let status: String
        let duplicate: Bool
    }

    /// Creates `count` events of `seats` seats (two requests at a time); returns their ids.
    func createEvents(count: Int, seats: Int, price: Int) async throws -> [String] {
        let formatter = ISO8601DateFormatter()
        let startsAt = formatter.string(from: Date().addingTimeInterval(365 * 86_400))
        let endsAt = formatter.string(from: Date().addingTimeInterval(365 * 86_400 + 3 * 3_600))
        let seatList = (1...seats).map { "{\"seat_id\":\"\(SagaEndToEnd.seatID($0))\",\"price\":\(price)}" }.joined(separator: ",")
        let body = Array(
            """
            {"name":"saga bench","host_id":"host-saga-bench","starts_at":"\(startsAt)","ends_at":"\(endsAt)",\
            "time_zone":"Europe/Berlin","currency":"EUR","seats":[\(seatList)]}
            """.utf8)
        return try await withThrowingTaskGroup(of: [String].self) { group in
            for part in 0..<2 {
                group.addTask {
                    var ids: [String] = []
                    for _ in stride(from: part, to: count, by: 2) {
                        let (status, answer) = try await send(.POST, bookingURL + "/v1/events", body: body, bearer: adminToken)
                        guard status == 201 else { throw SagaBenchError("POST /v1/events answered \(status): \(answer.prefix(300))") }
                        ids.append(try JSONDecoder().decode(Created.self, from: Data(answer.utf8)).eventID)
                    }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Holds `seat` of each event once, so each event's unavailable-seat cache exists before measuring.
    func prime(events: [String], seat: String, customer: String) async throws {
        for event in events {
            let (status, answer) = try await send(
                .POST, bookingURL + "/v1/holds", body: holdBody(event: event, seats: [seat], customer: customer), bearer: apiKey)
            guard status == 201 else { throw SagaBenchError("priming POST /v1/holds answered \(status): \(answer.prefix(300))") }
        }
    }

    /// The hold's id, or nil when the hold was refused (counted in `result`).
    func hold(event: String, seats: [String], customer: String, into result: inout WorkerResult) async throws -> String? {
        let (status, answer) = try await send(
            .POST, bookingURL + "/v1/holds", body: holdBody(event: event, seats: seats, customer: customer), bearer: apiKey)
        switch status {
        case 201:
            result.holds += 1
            return try JSONDecoder().decode(Held.self, from: Data(answer.utf8)).holdID
        case 409:
            result.conflicts += 1
            return nil
        default:
            result.failure("POST /v1/holds answered \(status): \(answer.prefix(300))")
            return nil
        }
    }

    /// The booking made of the hold, or nil when refused (a failure, counted in `result`).
    func book(hold: String, customer: String, key: String, into result: inout WorkerResult) async throws -> Booked? {
        let body = Array("{\"hold_id\":\"\(hold)\",\"customer_id\":\"\(customer)\"}".utf8)
        let (status, answer) = try await send(
            .POST, bookingURL + "/v1/bookings", body: body, bearer: apiKey, headers: [("Idempotency-Key", key)])
        guard status == 201 else {
            result.failure("POST /v1/bookings answered \(status): \(answer.prefix(300))")
            return nil
        }
        result.bookings += 1
        return try JSONDecoder().decode(Booked.self, from: Data(answer.utf8))
    }

    /// Posts the booking's `payment_intent.succeeded` (its amount and currency), signed as Stripe
    /// signs; true when it was accepted as a new event.
    func pay(booking: Booked, reference: String, into result: inout WorkerResult) async throws -> Bool {
        try await deliver(signed(booking: booking, reference: reference), into: &result)
    }

    /// The booking's `payment_intent.succeeded` body (padded with `description`) and its
    /// `Stripe-Signature`, signed now.
    func signed(booking: Booked, reference: String, description: String = "") -> (body: [UInt8], signature: String) {
        let now = Int64(Date().timeIntervalSince1970)
        let body = Self.stripeEvent(booking: booking, reference: reference, created: now, description: description)
        return (body, StripeSignature.header(payload: body, secret: stripeSecret, timestamp: now))
    }

    /// Posts a signed webhook; true when it was accepted as a new event.
    func deliver(_ webhook: (body: [UInt8], signature: String), into result: inout WorkerResult) async throws -> Bool {
        let (status, answer) = try await send(
            .POST, webhookURL + "/v1/webhooks/stripe", body: webhook.body, headers: [("Stripe-Signature", webhook.signature)])
        guard status == 200, let receipt = try? JSONDecoder().decode(Receipt.self, from: Data(answer.utf8)), receipt.status == "accepted",
            !receipt.duplicate
        else {
            result.failure("POST /v1/webhooks/stripe answered \(status): \(answer.prefix(300))")
            return false
        }
        return true
    }

    /// A Stripe event as the provider simulator renders it: the fields the service reads are `id`,
    /// `type`, `created`, and of `data.object`: `id`, `amount_received`, `currency` (lower case),
    /// `metadata.booking_id`. `description` pads the body (the open loop's webhooks are 1 KiB, like
    /// the webhooks pair's).
    static func stripeEvent(booking: Booked, reference: String, created: Int64, description: String = "") -> [UInt8] {
        Array(
            """
            {"id":"evt_\(reference)","object":"event","api_version":"2024-06-20","created":\(created),\
            "type":"payment_intent.succeeded","livemode":false,"pending_webhooks":1,\
            "request":{"id":null,"idempotency_key":"booking-\(booking.bookingID)-payment"},\
            "data":{"object":{"id":"pi_\(reference)","object":"payment_intent","amount":\(booking.amount),\
            "amount_received":\(booking.amount),"currency":"\(booking.currency.lowercased())","status":"succeeded",\
            "client_secret":"pi_\(reference)_secret_bench","description":"\(description)","metadata":{"booking_id":"\(booking.bookingID)"},\
            "created":\(created),"livemode":false,"last_payment_error":null,"latest_charge":"ch_\(reference)"}}}
            """.utf8)
    }

    func holdBody(event: String, seats: [String], customer: String) -> [UInt8] {
        Array("{\"event_id\":\"\(event)\",\"seat_ids\":[\(seats.map { "\"\($0)\"" }.joined(separator: ","))],\"customer_id\":\"\(customer)\"}".utf8)
    }

    private func send(
        _ method: HTTPMethod, _ url: String, body: [UInt8], bearer: String? = nil, headers: [(String, String)] = []
    ) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(body)
        let response = try await client.execute(request, timeout: .seconds(60))
        let answer = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: answer))
    }
}

/// User + system CPU seconds this process has used so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
        getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

struct SagaBenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension [Duration] {
    /// The `p` quantile in milliseconds ("n/a" when empty).
    func ms(_ p: Double) -> String {
        guard !isEmpty else { return "n/a" }
        let sorted = self.sorted()
        return String(format: "%.1fms", sorted[Swift.min(sorted.count - 1, Int(Double(sorted.count) * p))].timeInterval * 1000)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
