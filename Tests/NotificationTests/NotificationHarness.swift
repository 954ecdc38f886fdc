import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Messaging
import Postgres
import ServiceKit
import ServiceLifecycle
import ServiceTestSupport
import SharedModel
import Synchronization
import TestSupport
import Testing

@testable import Notification

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let instant: Mutex<Date>

    init(_ start: Date = Date()) { instant = Mutex(start) }

    var now: Date { instant.withLock { $0 } }
    var wallClock: WallClock { WallClock { self.now } }

    func advance(by duration: Duration) { instant.withLock { $0 = $0.adding(duration) } }
    func set(_ date: Date) { instant.withLock { $0 = date } }
}

/// Host names the test points anywhere (there is no DNS server here), changeable between calls.
final class TestResolver: HostResolver {
    private let table = Mutex<[String: [IPAddress]]>([:])

    func set(_ host: String, to addresses: [String]) {
        table.withLock { $0[host] = addresses.compactMap { IPAddress($0) } }
    }

    func addresses(of host: String) async throws -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        guard let addresses = table.withLock({ $0[host] }), !addresses.isEmpty else {
            throw HostResolutionError(host: host, reason: "unknown test host")
        }
        return addresses
    }
}

/// The notification service in-process over a fresh, migrated database: its router (driven by a test
/// client), its fan-out handler (fed envelopes directly, with their inbox rows) and its dispatcher
/// (started by the test), with an injected clock, resolver and jitter.
struct NotificationHarness: Sendable {
    static let adminToken = "admin-token"
    static let secretsKey = Data(repeating: 7, count: 32).base64EncodedString()

    let app: ServiceApplication
    let parts: NotificationParts
    let responder: RouterResponder<ServiceRequestContext>
    let client: HTTPClient
    /// The sender's clients pinned to the addresses its checks resolved.
    let pinned: PinnedHTTPClients
    let clock: TestClock
    let resolver: TestResolver
    let databaseURL: String
    /// A separate client for assertions and fixtures.
    let postgres: PostgresClient

    /// `treatedAsPublic`: addresses the SSRF policy accepts as public (the receivers listen on loopback).
    static func make(
        settings extra: [String: String] = [:], clock: TestClock = TestClock(), random: Double = 0, treatedAsPublic: Set<IPAddress> = []
    ) async throws -> NotificationHarness {
        let url = try await ServiceHarness.migratedDatabase(prefix: "notification")
        let environment = try ServiceHarness.environment(
            databaseURL: url, redisURL: nil, adminToken: adminToken,
            settings: ["NOTIFICATION_SECRETS_KEY": secretsKey, "NOTIFICATION_ALLOW_PRIVATE_NETWORKS": "true", "NOTIFICATION_TIMEOUT": "5s"],
            extra: extra)
        let configuration = try NotificationConfiguration(reader: ConfigurationReader(environment: environment))
        let app = ServiceApplication(settings: configuration.service, logger: TestEnvironment.logger)
        let router = app.makeRouter()
        let clients = WebhookSender.makeClients(perHost: configuration.delivery.maximumInFlight)
        let resolver = TestResolver()
        let parts = NotificationParts(
            app: app, configuration: configuration, clients: clients, resolver: resolver, treatedAsPublic: treatedAsPublic, clock: clock.wallClock,
            random: { random })
        parts.addRoutes(to: router)
        return NotificationHarness(
            app: app, parts: parts, responder: router.buildResponder(), client: clients.client, pinned: clients.pinned, clock: clock,
            resolver: resolver, databaseURL: url,
            postgres: try TestDatabase.client(url: url))
    }

    /// Runs `body` with a client of the router and the dispatcher (and its maintenance) running; then
    /// stops them and closes every connection.
    func run(dispatching: Bool = true, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let services: [any Service] = dispatching ? [parts.dispatcher, parts.maintenance(logger: TestEnvironment.logger)] : []
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [], logger: TestEnvironment.logger))
        let running = Task { try await group.run() }
        do {
            try await Application(responder: responder).test(.router, body)
        } catch {
            await stop(group, running)
            throw error
        }
        await stop(group, running)
    }

    private func stop(_ group: ServiceGroup, _ running: Task<Void, any Error>) async {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        await pinned.shutdown()
        try? await client.shutdown()
        await ServiceHarness.shutdown(app)
        await postgres.shutdown()
    }

    // MARK: Fixtures

    /// Creates an endpoint through the API; returns its id and secret.
    func createEndpoint(
        _ client: any TestClientProtocol, url: String, eventTypes: [String]? = nil, rateLimit: Int? = nil
    ) async throws -> (id: UUID, secret: String) {
        var body: [String: JSONValue] = ["url": .string(url)]
        if let eventTypes { body["event_types"] = .array(eventTypes.map(JSONValue.string)) }
        if let rateLimit { body["rate_limit_per_s"] = .integer(Int64(rateLimit)) }
        let answer = try await send(client, .post, "/v1/endpoints", body: .object(body))
        #expect(answer.status == .created, "create endpoint: \(String(describing: answer.json))")
        guard let id = answer["endpoint_id"]?.stringValue.flatMap(UUID.init(uuidString:)), let secret = answer["secret"]?.stringValue else {
            throw HarnessError("endpoint not created: \(String(describing: answer.json))")
        }
        return (id, secret)
    }

    /// An event as a producer would publish it.
    static func event(
        type: String = "booking.confirmed", aggregate: String = UUID().uuidString.lowercased(), sequence: Int64 = 1,
        producer: EventProducer = .booking, occurredAt: Date
    ) throws -> EventEnvelope {
        try EventEnvelope(
            jsonData: JSONEncoder.platform.encode(
                JSONValue.object([
                    "id": .string(UUID().uuidString.lowercased()), "type": .string(type), "version": 1,
                    "occurred_at": .string(RFC3339.string(from: occurredAt)), "aggregate_id": .string(aggregate), "sequence": .integer(sequence),
                    "correlation_id": "test", "causation_id": .null, "producer": .string(producer.rawValue),
                    "data": ["booking_id": .string(aggregate)],
                ])))
    }

    /// Hands `envelopes` to the fan-out as its consumer would (effect and inbox row in one transaction).
    func fanOut(_ envelopes: [EventEnvelope]) async throws {
        let handler = NotificationFanOut(clock: clock.wallClock, wake: { [dispatcher = parts.dispatcher] in dispatcher.wake() })
        for envelope in envelopes {
            try await app.postgres.withTransaction { transaction in
                try transaction.query(
                    "INSERT INTO messaging.inbox (consumer, event_id) VALUES (\(NotificationFanOut.group), \(envelope.id.uuid)) ON CONFLICT DO NOTHING"
                )
                try handler.apply(envelope, in: transaction)
            }
            handler.committed([envelope])
        }
    }

    func count(_ statement: PostgresStatement, file: String = #fileID, line: Int = #line) async throws -> Int {
        try await postgres.count(statement, file: file, line: line)
    }

    /// Waits until `condition` holds (or `timeout` passed); returns whether it held.
    func eventually(timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws -> Bool {
        try await TestSupport.eventually(timeout: timeout, condition)
    }

    // MARK: HTTP

    struct Answer: Sendable {
        let status: HTTPResponse.Status
        let json: JSONValue?

        var errorCode: String? { json?["error"]?["code"]?.stringValue }
        subscript(key: String) -> JSONValue? { json?[key] }
    }

    func send(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, body: JSONValue? = nil, raw: String? = nil,
        token: String? = adminToken, headers extra: HTTPFields = [:]
    ) async throws -> Answer {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: extra)
        if let token { headers[.authorization] = "Bearer \(token)" }
        let bytes = try raw.map { Array($0.utf8) } ?? body.map { Array(try JSONEncoder.platform.encode($0)) }
        return try await client.execute(uri: path, method: method, headers: headers, body: bytes.map { ByteBuffer(bytes: $0) }) { response in
            let json = response.body.readableBytes > 0 ? try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: response.body)) : nil
            return Answer(status: response.status, json: json)
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
