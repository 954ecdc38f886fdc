import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Migrations
import Postgres
import Redis
import ServiceKit
import ServiceTestSupport
import SharedModel
import TestSupport
import Testing

@testable import Booking

/// The booking service's router over a fresh, migrated database, driven in-process.
struct BookingHarness {
    static let apiKey = "client-key"
    /// A second client application, named, with two keys (one being rotated in).
    static let partnerKeys = ["partner-key-1", "partner-key-2"]
    static let adminToken = "admin-token"

    let app: ServiceApplication
    let parts: BookingParts
    let router: Router<ServiceRequestContext>
    let databaseURL: String
    /// A separate client for assertions and fixtures.
    let postgres: PostgresClient

    /// `databaseURL`: an existing migrated database to share (e.g. a second instance); otherwise a new one
    /// on `server` (default: the shared test Postgres).
    static func make(
        server: String? = nil, databaseURL: String? = nil, redisURL: String? = nil, settings extra: [String: String] = [:],
        clock: WallClock = .system
    ) async throws -> BookingHarness {
        let url: String
        if let databaseURL {
            url = databaseURL
        } else {
            url = try await ServiceHarness.migratedDatabase(prefix: "booking", on: server)
        }
        let environment = try ServiceHarness.environment(
            databaseURL: url, redisURL: redisURL, adminToken: adminToken,
            settings: [
                "API_KEYS": ([apiKey] + partnerKeys.map { "partner:\($0)" }).joined(separator: ","), "REDIS_POOL_SIZE": "16",
                "REDIS_POOL_WAIT": "60s", "MAX_BODY_BYTES": "65536",
                // Suites reuse a few customer ids for many holds; HoldLimitTests sets the limits it tests.
                "MAX_HELD_SEATS_PER_CUSTOMER": "10000", "HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE": "1000000",
            ], extra: extra)
        let configuration = try BookingConfiguration(reader: ConfigurationReader(environment: environment))
        let app = ServiceApplication(settings: configuration.service, logger: TestEnvironment.logger)
        let router = app.makeRouter()
        let parts = BookingParts(app: app, configuration: configuration, clock: clock)
        parts.addRoutes(to: router)
        return BookingHarness(app: app, parts: parts, router: router, databaseURL: url, postgres: try TestDatabase.client(url: url))
    }

    /// Runs `body` with a client of the router, then closes every connection.
    func run(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await ServiceHarness.run(router, app: app, body)
    }

    /// Closes the application's pools; ``postgres`` stays usable for assertions afterwards.
    func shutdown() async {
        await ServiceHarness.shutdown(app)
    }

    func count(_ statement: PostgresStatement, file: String = #fileID, line: Int = #line) async throws -> Int {
        try await postgres.count(statement, file: file, line: line)
    }
}

/// One answer: status and JSON body (nil when the body is not JSON).
struct Answer: Sendable {
    let status: HTTPResponse.Status
    let json: JSONValue?
    let bytes: [UInt8]
    let headers: HTTPFields

    var errorCode: String? { json?["error"]?["code"]?.stringValue }
    var seatIDs: [String] {
        (json?["seat_ids"] ?? json?["error"]?["details"]?["seat_ids"])?.arrayValue?.compactMap(\.stringValue) ?? []
    }
    subscript(key: String) -> JSONValue? { json?[key] }
}

enum Caller: Sendable {
    case client, admin, anonymous
    /// The second client application, with either of its two keys.
    case partner, partnerRotated

    var authorization: String? {
        switch self {
        case .client: "Bearer \(BookingHarness.apiKey)"
        case .partner: "Bearer \(BookingHarness.partnerKeys[0])"
        case .partnerRotated: "Bearer \(BookingHarness.partnerKeys[1])"
        case .admin: "Bearer \(BookingHarness.adminToken)"
        case .anonymous: nil
        }
    }
}

extension TestClientProtocol {
    /// Sends a request and decodes the JSON answer. `body` is sent as is when it is a String, else JSON-encoded.
    func call(
        _ method: HTTPRequest.Method, _ uri: String, as caller: Caller = .client, json body: JSONValue? = nil, raw: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> Answer {
        var headers = extra
        if let authorization = caller.authorization { headers[.authorization] = authorization }
        var buffer: ByteBuffer?
        if let raw {
            buffer = ByteBuffer(string: raw)
        } else if let body {
            buffer = ByteBuffer(bytes: try JSONEncoder().encode(body))
        }
        if buffer != nil { headers[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: headers, body: buffer) { response in
            let bytes = Array(buffer: response.body)
            return Answer(
                status: response.status, json: try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)), bytes: bytes, headers: response.headers)
        }
    }

    /// Creates an event with seats `S1`...`Sn` (price 1000 + index, EUR) starting in 30 days; returns its id.
    func createEvent(seats: Int, startsAt: String? = nil, timeZone: String = "Europe/Berlin") async throws -> String {
        let start = startsAt ?? RFC3339.string(from: Date().addingTimeInterval(30 * 86_400))
        let end = RFC3339.string(from: try RFC3339.date(from: start).addingTimeInterval(3 * 3600))
        let answer = try await call(
            .post, "/v1/events", as: .admin,
            json: [
                "name": "Concert", "host_id": "host_1", "starts_at": .string(start), "ends_at": .string(end), "time_zone": .string(timeZone),
                "currency": "EUR",
                "seats": .array((1...seats).map { ["seat_id": .string("S\($0)"), "price": .integer(Int64(1000 + $0))] }),
            ])
        guard answer.status == .created, let id = answer["event_id"]?.stringValue else {
            throw HarnessError("event creation answered \(answer.status): \(String(decoding: answer.bytes, as: UTF8.self))")
        }
        return id
    }

    func hold(_ event: String, _ seats: [String], customer: String) async throws -> Answer {
        try await call(
            .post, "/v1/holds", json: ["event_id": .string(event), "seat_ids": .array(seats.map { .string($0) }), "customer_id": .string(customer)])
    }

    func book(_ hold: String, customer: String, key: String = UUID().uuidString) async throws -> Answer {
        try await call(
            .post, "/v1/bookings", json: ["hold_id": .string(hold), "customer_id": .string(customer)], headers: [.idempotencyKey: key])
    }

    /// Holds `seats` and books them; returns the booking's answer.
    func holdAndBook(_ event: String, _ seats: [String], customer: String) async throws -> Answer {
        let hold = try await hold(event, seats, customer: customer)
        guard hold.status == .created, let id = hold["hold_id"]?.stringValue else {
            throw HarnessError("hold answered \(hold.status): \(String(decoding: hold.bytes, as: UTF8.self))")
        }
        return try await book(id, customer: customer)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
