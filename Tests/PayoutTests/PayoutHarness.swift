import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Messaging
import Postgres
import ProviderAPI
import ServiceKit
import ServiceTestSupport
import SharedModel
import Synchronization
import TestSupport
import Testing

@testable import Payout

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let instant: Mutex<Date>

    init(_ start: Date = Date()) { instant = Mutex(start) }

    var now: Date { instant.withLock { $0 } }
    var wallClock: WallClock { WallClock { self.now } }

    func set(_ date: Date) { instant.withLock { $0 = date } }
}

/// Transfers that succeed and are counted (tests that need the provider use the simulator).
final class CountingTransfers: Transfers {
    private let calls = Mutex<[TransferRequest]>([])

    var requests: [TransferRequest] { calls.withLock { $0 } }

    func transfer(_ request: TransferRequest) async throws(ProviderCallError) -> String {
        calls.withLock { $0.append(request) }
        return "tr_test_\(request.payoutID.uuidString.prefix(8).lowercased())"
    }
}

/// The payout service in-process over a fresh, migrated database: its router (driven by a test
/// client), its ledger handler (fed envelopes directly, with their inbox rows) and its runner, with
/// an injected clock.
struct PayoutHarness: Sendable {
    static let adminToken = "admin-token"

    let app: ServiceApplication
    let parts: PayoutParts
    let responder: RouterResponder<ServiceRequestContext>
    let clock: TestClock
    let databaseURL: String
    /// A separate client for assertions and fixtures.
    let postgres: PostgresClient

    static func make(
        settings extra: [String: String] = [:], transfers: any Transfers = CountingTransfers(), clock: TestClock = TestClock()
    ) async throws -> PayoutHarness {
        let url = try await ServiceHarness.migratedDatabase(prefix: "payout")
        let environment = try ServiceHarness.environment(
            databaseURL: url, redisURL: nil, adminToken: adminToken,
            settings: ["PROVIDER_API_KEY": "sk_test_payout", "PROVIDER_BASE_URL": "http://127.0.0.1:9"], extra: extra)
        let configuration = try PayoutConfiguration(reader: ConfigurationReader(environment: environment))
        let app = ServiceApplication(settings: configuration.service, logger: TestEnvironment.logger)
        let router = app.makeRouter()
        let parts = PayoutParts(app: app, configuration: configuration, transfers: transfers, clock: clock.wallClock)
        parts.addRoutes(to: router)
        return PayoutHarness(
            app: app, parts: parts, responder: router.buildResponder(), clock: clock, databaseURL: url, postgres: try TestDatabase.client(url: url))
    }

    /// Runs `body` with a client of the router, then closes every connection.
    func run(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        do {
            try await Application(responder: responder).test(.router, body)
        } catch {
            await shutdown()
            throw error
        }
        await shutdown()
    }

    func shutdown() async {
        await ServiceHarness.shutdown(app)
        await postgres.shutdown()
    }

    /// A runner over the service's pool; `beforeReconciliation` runs between computing and reconciling.
    func runner(beforeReconciliation: @escaping @Sendable (UUID) async throws -> Void = { _ in }) -> PayoutRunner {
        var runner = parts.runner
        runner.beforeReconciliation = beforeReconciliation
        return runner
    }

    /// Creates the run of `date` and works it to the end.
    @discardableResult
    func runPayout(_ date: String, beforeReconciliation: @escaping @Sendable (UUID) async throws -> Void = { _ in }) async throws -> PayoutRun {
        let runner = runner(beforeReconciliation: beforeReconciliation)
        let started = try await runner.start(try RunDate(parsing: date))
        guard let run = try await runner.finish(started.run.id, waiting: true) else { throw HarnessError("the run lock was not taken") }
        return run
    }

    /// Runs `date` with host_a's payout made one unit larger than the entries it covers, between
    /// computing and reconciling: the run fails reconciliation.
    func runPayoutWithMismatch(_ date: String) async throws -> PayoutRun {
        let postgres = self.postgres
        return try await runPayout(date) { runID in
            try await postgres.query(
                "UPDATE payout.payouts SET amount = amount + 1 WHERE id = (SELECT id FROM payout.payouts WHERE run_id = \(runID) AND host_id = 'host_a')"
            )
        }
    }

    // MARK: Ledger

    /// Hands `envelopes` to the ledger as its consumer would (effect and inbox row in one transaction).
    func ledger(_ envelopes: [EventEnvelope]) async throws {
        let handler = parts.ledgerHandler
        for envelope in envelopes {
            try await app.postgres.withTransaction { transaction in
                let inserted = try transaction.query(
                    "INSERT INTO messaging.inbox (consumer, event_id) VALUES (\(LedgerHandler.group), \(envelope.id.uuid)) ON CONFLICT DO NOTHING RETURNING 1"
                )
                guard !inserted.isEmpty else { return }
                try handler.apply(envelope, in: transaction)
            }
        }
    }

    static func envelope(_ event: some DomainEvent, at instant: Date, producer: EventProducer) throws -> EventEnvelope {
        try EventEnvelope(event: event, occurredAt: instant, sequence: 1, correlationID: "test", causationID: nil, producer: producer)
    }

    /// `booking.confirmed` of a new booking.
    static func confirmed(
        _ bookingID: BookingID = BookingID(), host: String, amount: Int64, currency: Currency = .eur, confirmedAt: Date, endsAt: Date
    ) throws -> EventEnvelope {
        let event = BookingConfirmed(
            bookingID: bookingID, eventID: EventID(), hostID: try HostID(host), customerID: try CustomerID("cus_1"), seatIDs: [try SeatID("A-1")],
            amount: Money(amount: amount, currency: currency), providerRef: "pi_\(bookingID.description.prefix(8))", confirmedAt: confirmedAt,
            eventEndsAt: endsAt)
        return try envelope(event, at: confirmedAt, producer: .booking)
    }

    /// `refund.succeeded` of a booking.
    static func refunded(_ bookingID: BookingID, amount: Int64, currency: Currency = .eur, at instant: Date) throws -> EventEnvelope {
        let event = RefundSucceeded(
            refundID: RefundID(), bookingID: bookingID, providerRef: "pi_\(bookingID.description.prefix(8))",
            amount: Money(amount: amount, currency: currency))
        return try envelope(event, at: instant, producer: .paymentsWebhook)
    }

    /// `host_a` and `host_b` with accounts and one booking each, settled on 2026-11-10 (payouts of
    /// 9,000 and 18,000 EUR cents at the platform's 10%).
    func twoSettledHosts(_ client: any TestClientProtocol) async throws {
        for host in ["host_a", "host_b"] {
            let put = try await send(client, .put, "/v1/hosts/\(host)", body: ["payout_account": .string("acct_\(host.suffix(1))1")])
            #expect(put.status == .ok)
        }
        let at = try instant("2026-11-10T10:00:00Z")
        try await ledger([
            try Self.confirmed(host: "host_a", amount: 10_000, confirmedAt: at, endsAt: at),
            try Self.confirmed(host: "host_b", amount: 20_000, confirmedAt: at, endsAt: at),
        ])
    }

    // MARK: Reads

    /// The run's report lines as `host currency bookings gross fees refunds fee_reversals carried_in net status`.
    func lines(of runID: UUID) async throws -> [String] {
        try await postgres.query(
            """
            SELECT host_id || ' ' || currency || ' ' || bookings || ' ' || gross || ' ' || fees || ' ' || refunds || ' ' || fee_reversals
                   || ' ' || carried_in || ' ' || net || ' ' || status
            FROM payout.run_lines WHERE run_id = \(runID) ORDER BY host_id, currency
            """
        ).map { try $0.decode(String.self, at: 0) }
    }

    /// The run's payouts as `host currency amount`.
    func payouts(of runID: UUID) async throws -> [String] {
        try await postgres.query(
            "SELECT host_id || ' ' || currency || ' ' || amount FROM payout.payouts WHERE run_id = \(runID) ORDER BY host_id, currency"
        ).map { try $0.decode(String.self, at: 0) }
    }

    func count(_ statement: PostgresStatement, file: String = #fileID, line: Int = #line) async throws -> Int {
        try await postgres.count(statement, file: file, line: line)
    }

    // MARK: HTTP

    struct Answer: Sendable {
        let status: HTTPResponse.Status
        let json: JSONValue?
        let text: String

        var errorCode: String? { json?["error"]?["code"]?.stringValue }
        subscript(key: String) -> JSONValue? { json?[key] }
    }

    func send(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, body: JSONValue? = nil, raw: String? = nil,
        token: String? = adminToken
    ) async throws -> Answer {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        let bytes = try raw.map { Array($0.utf8) } ?? body.map { Array(try JSONEncoder.platform.encode($0)) }
        return try await client.execute(uri: path, method: method, headers: headers, body: bytes.map { ByteBuffer(bytes: $0) }) { response in
            let text = String(buffer: response.body)
            let json = response.body.readableBytes > 0 ? try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: response.body)) : nil
            return Answer(status: response.status, json: json, text: text)
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `2026-11-20T12:00:00Z` as a date.
func instant(_ text: String) throws -> Date {
    try RFC3339.date(from: text)
}
