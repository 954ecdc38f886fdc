import AsyncHTTPClient
import Foundation
import HummingbirdTesting
import Messaging
import NIOCore
import NIOHTTP1
import ProviderAPI
import ProviderSimulator
import Redis
import ServiceLifecycle
import SharedModel
import TestSupport
import Testing

@testable import Payout

/// The payout service's transfer consumer against the provider simulator on a real port: payouts a
/// run announced are published on a stream of the test's own, as the relay would.
struct TransferWorld: Sendable {
    let harness: PayoutHarness
    let redis: RedisClient
    let http: HTTPClient
    let stream: String
    let simulatorURL: String

    static let apiKey = "sk_test_transfers"

    static func run(maxAttempts: Int = 8, _ body: @Sendable (TransferWorld, any TestClientProtocol) async throws -> Void) async throws {
        let port = try freePort()
        var simulatorConfiguration = SimulatorConfiguration(apiKey: apiKey)
        simulatorConfiguration.port = port
        let simulator = buildSimulator(configuration: simulatorConfiguration, logger: TestEnvironment.logger)
        let http = StripeAPIClient.makeHTTPClient()
        let simulatorURL = "http://127.0.0.1:\(port)"
        let transfers = TransferProvider(
            client: http, configuration: .init(baseURL: simulatorURL, apiKey: apiKey, timeout: .seconds(5)))
        let harness = try await PayoutHarness.make(transfers: transfers, clock: TestClock(try instant("2026-11-21T06:00:00Z")))
        let stream = "stream:payout-test-\(UUID().uuidString.prefix(8).lowercased())"
        let consumer = harness.parts.transferConsumer(logger: TestEnvironment.logger) { configuration in
            configuration.stream = stream
            configuration.maxAttempts = maxAttempts
            configuration.initialBackoff = .milliseconds(20)
            configuration.maximumBackoff = .milliseconds(100)
            configuration.block = .milliseconds(100)
        }
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: simulator), .init(service: consumer)], logger: TestEnvironment.logger))
        let world = TransferWorld(
            harness: harness, redis: try RedisClient.forTests(connections: 2), http: http, stream: stream, simulatorURL: simulatorURL)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                _ = try await eventually { (try? await world.request(.GET, "\(simulatorURL)/healthz"))?.status == 200 }
                try await harness.run { client in try await body(world, client) }
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                await world.close()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        await world.close()
    }

    private func close() async {
        try? await http.shutdown()
        await redis.shutdown()
    }

    /// Publishes the outbox's `payout.created` events not published yet on the test's stream.
    func publishAnnounced() async throws {
        let rows = try await harness.postgres.query(
            "UPDATE messaging.outbox SET published_at = now() WHERE event_type = 'payout.created' AND published_at IS NULL RETURNING envelope::text")
        for row in rows {
            _ = try await redis.xadd(stream, fields: [(Streams.envelopeField, Array(try row.decode(String.self, at: 0).utf8))])
        }
    }

    func fault(_ mode: String, count: Int?) async throws {
        let countText = count.map { ", \"count\": \($0)" } ?? ""
        let answer = try await request(
            .POST, "\(simulatorURL)/simulator/faults", json: "{\"operation\": \"transfers\", \"mode\": \"\(mode)\"\(countText)}")
        #expect((200..<300).contains(answer.status), "fault: \(String(describing: answer.body))")
    }

    /// The simulator's log of `POST /v1/transfers`.
    func transferCalls() async throws -> [JSONValue] {
        let log = try await request(.GET, "\(simulatorURL)/simulator/requests")
        return (log.body?.arrayValue ?? log.body?["requests"]?.arrayValue ?? []).filter {
            $0["path"]?.stringValue == "/v1/transfers" && $0["method"]?.stringValue == "POST"
        }
    }

    func request(_ method: HTTPMethod, _ url: String, json: String? = nil) async throws -> (status: Int, body: JSONValue?) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(Self.apiKey)")
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await http.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: bytes)))
    }
}

@Suite("Payout transfers at the provider simulator")
struct PayoutTransferTests {
    @Test("transient provider failures, then success: each payout paid once, with one idempotency key per payout")
    func transientThenPaid() async throws {
        try await TransferWorld.run { world, client in
            try await world.harness.twoSettledHosts(client)
            let run = try await world.harness.runPayout("2026-11-20")
            try await world.fault("transient", count: 3)
            try await world.publishAnnounced()
            #expect(try await eventually { try await world.harness.count("SELECT count(*) FROM payout.payouts WHERE status = 'paid'") == 2 })
            let calls = try await world.transferCalls()
            let payoutIDs = try await world.harness.postgres.query("SELECT id::text FROM payout.payouts WHERE run_id = \(run.id)").map {
                try $0.decode(String.self, at: 0)
            }
            #expect(Set(calls.compactMap { $0["idempotency_key"]?.stringValue }) == Set(payoutIDs.map { "payout-\($0)" }))
            #expect(calls.filter { $0["status"] == 200 }.count == 2)
            #expect(calls.filter { $0["status"] == 500 }.count == 3)
            let listed = try await world.request(.GET, "\(world.simulatorURL)/v1/transfers?limit=100")
            #expect(listed.body?["data"]?.arrayValue?.count == 2)
            #expect(try await world.harness.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'payout.paid'") == 2)
            #expect(try await world.harness.count("SELECT count(*) FROM payout.payouts WHERE provider_ref LIKE 'tr_%'") == 2)
            // A redelivered payout.created pays nothing twice.
            try await world.harness.postgres.query("UPDATE messaging.outbox SET published_at = NULL WHERE event_type = 'payout.created'")
            try await world.harness.postgres.query("DELETE FROM messaging.inbox WHERE consumer = \(TransferWorker.group)")
            try await world.publishAnnounced()
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await world.transferCalls().count == calls.count)
            let host = try await world.harness.send(client, .get, "/v1/hosts/host_a/payouts")
            #expect(host["payouts"]?.arrayValue?.first?["status"] == "paid")
        }
    }

    @Test("a permanent refusal fails the payout, returns its entries to the balance, and the next run pays them")
    func refusedThenRepaid() async throws {
        try await TransferWorld.run { world, client in
            try await world.harness.twoSettledHosts(client)
            try await world.harness.runPayout("2026-11-20")
            try await world.fault("refuse", count: 1)
            try await world.publishAnnounced()
            #expect(
                try await eventually {
                    try await world.harness.count("SELECT count(*) FROM payout.payouts WHERE status IN ('paid', 'failed')") == 2
                })
            let failed = try await world.harness.postgres.query("SELECT host_id, amount, error FROM payout.payouts WHERE status = 'failed'")
            #expect(failed.count == 1)
            let host = try failed[0].decode(String.self, at: 0)
            let amount = try failed[0].decode(Int64.self, at: 1)
            #expect(try failed[0].decode(String.self, at: 2).contains("transfer_refused"))
            #expect(try await world.harness.count("SELECT count(*) FROM messaging.outbox WHERE event_type = 'payout.failed'") == 1)
            let balance = try await world.harness.send(client, .get, "/v1/hosts/\(host)/balance")
            #expect(balance["balances"] == [["currency": "EUR", "payable": .integer(amount), "pending": 0, "held": 0]])

            world.harness.clock.set(try instant("2026-11-22T06:00:00Z"))
            let next = try await world.harness.runPayout("2026-11-21")
            #expect(try await world.harness.payouts(of: next.id) == ["\(host) EUR \(amount)"])
            #expect(try await world.harness.lines(of: next.id) == ["\(host) EUR 1 0 0 0 0 \(amount) \(amount) payout"])
            try await world.publishAnnounced()
            #expect(
                try await eventually {
                    try await world.harness.count("SELECT count(*) FROM payout.payouts WHERE run_id = \(next.id) AND status = 'paid'") == 1
                })
            let refused = try await world.transferCalls().filter { $0["status"] == 400 }
            #expect(refused.count == 1)
        }
    }

    @Test(
        "a KWD balance of 10.005 is transferred as 10.000; refused once, its entries and held-back rest come back, and the next run transfers the same 10.000"
    )
    func roundedPayoutTransferred() async throws {
        try await TransferWorld.run { world, client in
            let harness = world.harness
            let put = try await harness.send(client, .put, "/v1/hosts/host_k", body: ["payout_account": "acct_k1", "fee_bps": 0])
            #expect(put.status == .ok)
            let at = try instant("2026-11-10T10:00:00Z")
            try await harness.ledger([
                try PayoutHarness.confirmed(host: "host_k", amount: 10_005, currency: try Currency("KWD"), confirmedAt: at, endsAt: at)
            ])
            let first = try await harness.runPayout("2026-11-20")
            #expect(try await harness.payouts(of: first.id) == ["host_k KWD 10000"])
            try await world.fault("refuse", count: 1)
            try await world.publishAnnounced()
            #expect(try await eventually { try await harness.count("SELECT count(*) FROM payout.payouts WHERE status = 'failed'") == 1 })
            // The failed payout's items (the revenue and the -5 held back) are open again beside the +5 carried.
            #expect(
                try await harness.send(client, .get, "/v1/hosts/host_k/balance")["balances"] == [
                    ["currency": "KWD", "payable": 10_005, "pending": 0, "held": 0]
                ])

            harness.clock.set(try instant("2026-11-22T06:00:00Z"))
            let next = try await harness.runPayout("2026-11-21")
            #expect(next.status == .completed, "mismatches: \(next.mismatches)")
            #expect(try await harness.payouts(of: next.id) == ["host_k KWD 10000"])
            #expect(try await harness.lines(of: next.id) == ["host_k KWD 1 0 0 0 0 10005 10000 payout"])
            try await world.publishAnnounced()
            #expect(
                try await eventually {
                    try await harness.count("SELECT count(*) FROM payout.payouts WHERE run_id = \(next.id) AND status = 'paid'") == 1
                })
            #expect(try await world.transferCalls().map { $0["status"] } == [400, 200])
            // What the provider holds: one transfer of 10.000 KWD.
            let transfers = try await world.request(.GET, "\(world.simulatorURL)/v1/transfers").body?["data"]?.arrayValue ?? []
            #expect(transfers.map { [$0["amount"], $0["currency"]] } == [[10_000, "kwd"]])
            #expect(
                try await harness.send(client, .get, "/v1/hosts/host_k/balance")["balances"] == [
                    ["currency": "KWD", "payable": 5, "pending": 0, "held": 0]
                ])
        }
    }

    @Test("a provider that keeps failing: the payout stays pending and is dead-lettered for an operator to replay")
    func keepsFailing() async throws {
        try await TransferWorld.run(maxAttempts: 3) { world, client in
            try await world.harness.twoSettledHosts(client)
            try await world.harness.runPayout("2026-11-20")
            try await world.fault("transient", count: nil)
            try await world.publishAnnounced()
            #expect(
                try await eventually {
                    try await world.harness.count(
                        "SELECT count(*) FROM messaging.dead_letters WHERE consumer = \(TransferWorker.group) AND kind = 'failure'") == 2
                })
            #expect(try await world.harness.count("SELECT count(*) FROM payout.payouts WHERE status = 'pending'") == 2)
            #expect(try await world.transferCalls().count == 6)
        }
    }
}
