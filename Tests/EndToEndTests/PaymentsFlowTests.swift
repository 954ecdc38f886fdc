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

/// A migrated database on the disruptable Postgres, and the provider simulator and payments-webhook
/// started against it, the simulator's webhooks signed for payments-webhook.
struct PaymentsProcesses {
    let databaseURL: String
    let simulator: ServiceProcess
    let payments: ServiceProcess
    /// Settings every service of the test shares.
    let shared: [String: String]

    /// `payments`: settings of payments-webhook beyond the test's defaults (e.g. the sweep's).
    static func start(
        on servers: DisruptableServers, prefix: String, payments settings: [String: String] = [:]
    ) async throws
        -> PaymentsProcesses
    {
        let url = try await TestDatabase.create(prefix: prefix, on: servers.databaseURL)
        let migrate = try ServiceProcess.start("payments-webhook", arguments: ["migrate"], environment: ["DATABASE_URL": url])
        #expect(await migrate.child.termination(within: .seconds(30)) == .exited(0), "\(migrate.output)")
        let simulatorPort = try freePort()
        let paymentsPort = try freePort()
        let secret = "whsec_e2e_stripe_secret"
        let shared = ["DATABASE_URL": url, "REDIS_URL": servers.redisURL, "ADMIN_TOKEN": "admin", "LOG_LEVEL": "info"]
        let simulator = try ServiceProcess.start(
            "provider-simulator",
            environment: [
                "PORT": String(simulatorPort), "PROVIDER_API_KEY": "sk_test_e2e", "STRIPE_WEBHOOK_SECRET": secret,
                "WEBHOOK_URL": "http://127.0.0.1:\(paymentsPort)/v1/webhooks/stripe",
            ], port: simulatorPort)
        let payments = try ServiceProcess.start(
            "payments-webhook",
            environment: shared.merging([
                "PORT": String(paymentsPort), "STRIPE_WEBHOOK_SECRETS": secret, "PAYMENT_EVENTS_SECRETS": "whsec_ZTJl",
                "PROVIDER_API_KEY": "sk_test_e2e", "PROVIDER_BASE_URL": "http://127.0.0.1:\(simulatorPort)",
            ]) { _, new in new }.merging(settings) { _, new in new }, port: paymentsPort)
        return PaymentsProcesses(databaseURL: url, simulator: simulator, payments: payments, shared: shared)
    }
}

@Suite("Payments over real processes: payments-webhook and the provider simulator")
struct PaymentsFlowTests {
    @Test("payment.requested -> an intent at the simulator -> paid -> signed webhook -> payment.succeeded on stream:payments")
    func intentPaidAndReported() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let started = try await PaymentsProcesses.start(on: servers, prefix: "e2e_payments")
            let (url, simulator, payments) = (started.databaseURL, started.simulator, started.payments)
            let (simulatorPort, paymentsPort) = (simulator.port, payments.port)
            defer {
                Task {
                    await payments.child.kill()
                    await simulator.child.kill()
                }
            }
            #expect(await waitFor("/healthz", port: simulatorPort, status: 200)?.status == 200, "\(simulator.output)")
            #expect(await waitFor("/readyz", port: paymentsPort, status: 200)?.status == 200, "\(payments.output)")

            // The booking service's relay would publish this; here the test does.
            let redis = try RedisClient.forTests(url: servers.redisURL, connections: 2)
            defer { Task { await redis.shutdown() } }
            let booking = BookingID()
            let requested = PaymentRequested(
                bookingID: booking, amount: Money(amount: 7300, currency: .eur), customerID: try CustomerID("cus_e2e"),
                idempotencyKey: "payment:\(booking)")
            let envelope = try EventEnvelope(
                event: requested, occurredAt: Date(), sequence: 1, correlationID: "e2e", causationID: nil, producer: .booking)
            _ = try await redis.xadd(Streams.booking, fields: [(Streams.envelopeField, Array(try envelope.jsonData()))])

            let postgres = try TestDatabase.client(url: url, connections: 1)
            defer { Task { await postgres.shutdown() } }
            var reference: String?
            let deadline = ContinuousClock.now + .seconds(15)
            while reference == nil, ContinuousClock.now < deadline {
                reference = try await postgres.query("SELECT provider_ref FROM payments.payment_intents WHERE booking_id = \(booking.rawValue)")
                    .first.map { try $0.decode(String.self, at: 0) }
                if reference == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let intent = try #require(reference, "no intent recorded: \(payments.output)")

            let client = TestClient(host: "127.0.0.1", port: simulatorPort, configuration: .init(timeout: .seconds(10)))
            client.connect()
            defer { Task { try? await client.shutdown() } }
            let paid = try await client.post(
                "/simulator/payment_intents/\(intent)/succeed", headers: [.contentType: "application/json"], body: ByteBuffer(string: "{}"))
            let answer = paid.body.map { String(buffer: $0) } ?? ""
            #expect(paid.status == .ok, "\(answer)")
            #expect(answer.contains(#""delivered":true"#), "\(answer)")

            // Both events reach Redis through the service's outbox relay.
            var types: [String] = []
            while ContinuousClock.now < deadline + .seconds(10) {
                types = try await redis.xrange("stream:payments").compactMap { entry in
                    guard let text = entry.string(Streams.envelopeField), let event = try? EventEnvelope(jsonData: Data(text.utf8)),
                        event.aggregateID == booking.description
                    else { return nil }
                    return event.type
                }
                if types.count >= 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(types == ["payment.intent_created", "payment.succeeded"])

            payments.child.send(SIGTERM)
            simulator.child.send(SIGTERM)
            #expect(await payments.child.termination(within: .seconds(5)) == .exited(0))
            #expect(await simulator.child.termination(within: .seconds(5)) == .exited(0))
        }
    }
}

/// The `booking.confirmed` envelopes on `stream:booking`.
private func confirmedEvents(on redis: RedisClient) async throws -> Int {
    try await redis.xrange(Streams.booking).filter { entry in
        entry.string(Streams.envelopeField).flatMap { try? EventEnvelope(jsonData: Data($0.utf8)) }?.type == "booking.confirmed"
    }.count
}

/// booking, payments-webhook and the provider simulator as processes on the disruptable servers, with
/// clients of the booking API and the simulator.
struct SagaSystem {
    let started: PaymentsProcesses
    let booking: ServiceProcess
    let client: TestClient
    let simulatorClient: TestClient
    var processes: [ServiceProcess] { [started.simulator, started.payments, booking] }

    /// Runs `body` with the three processes up; kills whatever still runs afterwards.
    static func run(prefix: String, _ body: (SagaSystem, RedisClient) async throws -> Void) async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            // Each run starts from empty streams: earlier tests' events must not reach these consumers.
            let redis = try RedisClient.forTests(url: servers.redisURL, connections: 1)
            defer { Task { await redis.shutdown() } }
            _ = try await redis.send("DEL", .init(Streams.booking), .init(Streams.payments))

            let started = try await PaymentsProcesses.start(on: servers, prefix: prefix)
            let bookingPort = try freePort()
            let booking = try ServiceProcess.start(
                "booking", environment: started.shared.merging(["PORT": String(bookingPort), "API_KEYS": "key"]) { _, new in new },
                port: bookingPort)
            let processes = [started.simulator, started.payments, booking]
            // Every process is stopped by DisruptableServers when the section ends.
            for process in processes {
                #expect(await waitFor("/healthz", port: process.port, status: 200)?.status == 200, "\(process.name): \(process.output)")
            }
            let client = TestClient(host: "127.0.0.1", port: bookingPort, configuration: .init(timeout: .seconds(10)))
            client.connect()
            defer { Task { try? await client.shutdown() } }
            let simulatorClient = TestClient(host: "127.0.0.1", port: started.simulator.port, configuration: .init(timeout: .seconds(10)))
            simulatorClient.connect()
            defer { Task { try? await simulatorClient.shutdown() } }
            try await body(SagaSystem(started: started, booking: booking, client: client, simulatorClient: simulatorClient), redis)
        }
    }

    /// Calls the booking API: the admin token for creating events and `/v1/admin`, the client key otherwise.
    func call(_ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, headers extra: HTTPFields = [:]) async throws -> (Int, JSONValue?)
    {
        let admin = (method == .post && path == "/v1/events") || path.hasPrefix("/v1/admin")
        var headers: HTTPFields = [.authorization: admin ? "Bearer admin" : "Bearer key", .contentType: "application/json"]
        for field in extra { headers[field.name] = field.value }
        let response = try await client.execute(.init(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
        return (Int(response.status.code), response.body.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: $0)) })
    }

    /// Calls the simulator (its control API takes JSON, its `/v1` API the key).
    func simulator(_ method: HTTPRequest.Method, _ path: String, _ body: String? = nil) async throws -> (Int, JSONValue?) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if path.hasPrefix("/v1/") { headers[.authorization] = "Bearer sk_test_e2e" }
        let response = try await simulatorClient.execute(.init(path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }))
        return (Int(response.status.code), response.body.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: $0)) })
    }

    /// Creates an event of one seat, holds and books it; returns the event and booking ids and the
    /// payment intent's reference once the payments service created it.
    func book(startsAt: String = "2027-01-10T20:00:00+01:00") async throws -> (event: String, booking: String, intent: String) {
        let endsAt = RFC3339.string(from: try RFC3339.date(from: startsAt).addingTimeInterval(3 * 3600))
        let (_, created) = try await call(
            .post, "/v1/events",
            #"{"name":"Gig","host_id":"host_1","starts_at":"\#(startsAt)","ends_at":"\#(endsAt)","time_zone":"Europe/Berlin","currency":"EUR","seats":[{"seat_id":"A1","price":2500}]}"#
        )
        let event = try #require(created?["event_id"]?.stringValue)
        let (_, hold) = try await call(.post, "/v1/holds", #"{"event_id":"\#(event)","seat_ids":["A1"],"customer_id":"cus_1"}"#)
        let holdID = try #require(hold?["hold_id"]?.stringValue)
        let (status, booked) = try await call(
            .post, "/v1/bookings", #"{"hold_id":"\#(holdID)","customer_id":"cus_1"}"#, headers: [.init("Idempotency-Key")!: UUID().uuidString])
        #expect(status == 201)
        let bookingID = try #require(booked?["booking_id"]?.stringValue)
        // The intent appears on the booking once the payments service created it.
        var intent: String?
        let deadline = ContinuousClock.now + .seconds(10)
        while intent == nil, ContinuousClock.now < deadline {
            intent = try await call(.get, "/v1/bookings/\(bookingID)?customer_id=cus_1").1?["payment"]?["provider_ref"]?.stringValue
            if intent == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        return (event, bookingID, try #require(intent, "no payment on the booking: \(started.payments.output)"))
    }

    /// Polls the booking's `key` (e.g. `status`) until it is `expected`, for up to `timeout`; returns the last value.
    func wait(
        for booking: String, _ key: String = "status", toBe expected: String, path suffix: String = "", timeout: Duration = .seconds(10)
    ) async throws -> String? {
        let deadline = ContinuousClock.now + timeout
        var value: String?
        while value != expected, ContinuousClock.now < deadline {
            value = try await call(.get, "/v1/bookings/\(booking)\(suffix)?customer_id=cus_1").1?[key]?.stringValue
            if value != expected { try await Task.sleep(for: .milliseconds(20)) }
        }
        return value
    }

    /// SIGTERM to every process; each must exit 0 within 5 s.
    func stop() async {
        for process in processes { process.child.send(SIGTERM) }
        for process in processes {
            #expect(await process.child.termination(within: .seconds(5)) == .exited(0), "\(process.name)")
        }
    }
}

@Suite("Booking saga over real processes: booking, payments-webhook and the provider simulator")
struct BookingSagaFlowTests {
    @Test("hold -> booking -> intent at the simulator -> paid -> signed webhook -> booking confirmed, seats sold")
    func happyPath() async throws {
        try await SagaSystem.run(prefix: "e2e_saga") { system, redis in
            let (event, bookingID, reference) = try await system.book()
            let paidAt = ContinuousClock.now
            #expect(try await system.simulator(.post, "/simulator/payment_intents/\(reference)/succeed", "{}").0 == 200)
            let state = try await system.wait(for: bookingID, toBe: "confirmed")
            #expect(state == "confirmed", "\(system.booking.output)")
            let elapsed = ContinuousClock.now - paidAt
            #expect(elapsed < .seconds(10), "webhook sent -> booking confirmed took \(elapsed)")
            let seats = try await system.call(.get, "/v1/events/\(event)/seats").1
            #expect(seats?["seats"]?.arrayValue?.first?["state"] == "sold")
            // booking.confirmed reaches stream:booking through the booking service's relay, once.
            var confirmations = 0
            while confirmations == 0, ContinuousClock.now < paidAt + .seconds(15) {
                confirmations = try await confirmedEvents(on: redis)
                if confirmations == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await confirmedEvents(on: redis) == 1)
            await system.stop()
        }
    }

    @Test("a provider refusing refunds -> compensation_failed; after the fix, `booking saga resume` refunds once -> refunded")
    func refusedRefundResumed() async throws {
        try await SagaSystem.run(prefix: "e2e_resume") { system, _ in
            let (_, bookingID, reference) = try await system.book()
            #expect(try await system.simulator(.post, "/simulator/payment_intents/\(reference)/succeed", "{}").0 == 200)
            #expect(try await system.wait(for: bookingID, toBe: "confirmed") == "confirmed")

            // The provider refuses every refund: the cancellation's refund fails for good.
            #expect(try await system.simulator(.post, "/simulator/faults", #"{"operation":"refunds","mode":"refuse","count":null}"#).0 == 200)
            let (cancelled, answer) = try await system.call(.post, "/v1/bookings/\(bookingID)/cancel", #"{"customer_id":"cus_1"}"#)
            #expect(cancelled == 200 && answer?["status"] == "refund_pending")
            let failed = try await system.wait(for: bookingID, "state", toBe: "compensation_failed", path: "/saga")
            #expect(failed == "compensation_failed", "\(system.started.payments.output)")
            let listed = try await system.call(.get, "/v1/admin/sagas?state=compensation_failed").1
            #expect(listed?["sagas"]?.arrayValue?.compactMap { $0["booking_id"]?.stringValue } == [bookingID])

            // Fixed at the provider; the operator resumes from the command line.
            #expect(try await system.simulator(.delete, "/simulator/faults").0 == 200)
            let resume = try ServiceProcess.start(
                "booking", arguments: ["saga", "resume", bookingID, "--operator", "e2e"],
                environment: ["DATABASE_URL": system.started.databaseURL])
            #expect(await resume.child.termination(within: .seconds(30)) == .exited(0), "\(resume.output)")
            #expect(resume.output.contains(#""outcome":"resumed""#) && resume.output.contains("resume-1"), "\(resume.output)")
            let refunded = try await system.wait(for: bookingID, toBe: "refunded")
            #expect(refunded == "refunded", "\(system.started.payments.output)")

            // One refund at the provider; the resumed request looked for existing refunds first.
            let refunds = try await system.simulator(.get, "/v1/refunds?payment_intent=\(reference)").1
            #expect(refunds?["data"]?.arrayValue?.count == 1)
            let log = try await system.simulator(.get, "/simulator/requests").1
            let calls = log?.arrayValue ?? log?["requests"]?.arrayValue ?? []
            let creations = calls.filter { $0["path"] == "/v1/refunds" && $0["method"] == "POST" && $0["fault"] != true }
            #expect(creations.compactMap { $0["idempotency_key"]?.stringValue } == ["refund-cancel-\(bookingID)-resume-1"])
            #expect(calls.contains { $0["path"] == "/v1/refunds" && $0["method"] == "GET" })
            let saga = try await system.call(.get, "/v1/bookings/\(bookingID)/saga").1
            let steps = saga?["steps"]?.arrayValue?.compactMap { $0["step"]?.stringValue } ?? []
            #expect(steps.suffix(4) == ["refund_requested", "refund_failed", "saga_resumed", "refunded"], "\(steps)")
            #expect(saga?["attempts"]?.integerValue == 1)

            // A second resume finds nothing to do.
            let again = try ServiceProcess.start(
                "booking", arguments: ["saga", "resume", bookingID, "--operator", "e2e"],
                environment: ["DATABASE_URL": system.started.databaseURL])
            #expect(await again.child.termination(within: .seconds(30)) != .exited(0))
            #expect(again.output.contains("refunded"), "\(again.output)")
            await system.stop()
        }
    }
}
