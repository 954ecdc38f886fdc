import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import Postgres
import Redis
import SharedModel
import TestSupport
import Testing

@testable import PaymentsWebhook

@Suite("Payments webhooks when the relay or Postgres is away")
struct DeliveryResilienceTests {
    @Test("1,000 distinct events posted while no relay runs are all published, once each, when it starts")
    func backlogPublishedWhenRelayStarts() async throws {
        let harness = try await PaymentsHarness.make()
        let postgres = harness.postgres
        let redis = try RedisClient.forTests(connections: 4)
        let eventIDs = (0..<1000).map { "evt_backlog_\($0)_\(UUID().uuidString.prefix(8))" }
        try await harness.run { client in
            for batch in stride(from: 0, to: eventIDs.count, by: 50) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for id in eventIDs[batch..<batch + 50] {
                        group.addTask {
                            let body = Deliveries.stripeEvent(id: id, type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
                            let answer = try await client.stripe(body)
                            #expect(answer.status == .ok)
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
        #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL") == 1000)
        let domainIDs = Set(try await postgres.query("SELECT domain_event_id FROM payments.provider_events").map { try $0.decode(UUID.self, at: 0) })
        #expect(domainIDs.count == 1000)

        var relayConfiguration = OutboxRelay.Configuration()
        relayConfiguration.epochKey = "outbox:epoch:test-\(UUID().uuidString.prefix(8))"
        let relay = OutboxRelay(postgres: postgres, redis: redis, configuration: relayConfiguration, logger: TestEnvironment.logger)
        let task = Task { try await relay.run() }
        defer { task.cancel() }
        let deadline = ContinuousClock.now + .seconds(30)
        while try await harness.count("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL") > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL") == 0)
        // Every one of them is on the stream exactly once.
        var seen: [UUID: Int] = [:]
        for entry in try await redis.xrange(Streams.stream(for: .paymentsWebhook)) {
            guard let text = entry.string(Streams.envelopeField), let envelope = try? EventEnvelope(jsonData: Data(text.utf8)) else { continue }
            if domainIDs.contains(envelope.id.uuid) { seen[envelope.id.uuid, default: 0] += 1 }
        }
        #expect(seen.count == 1000)
        #expect(seen.values.allSatisfy { $0 == 1 })
        await redis.shutdown()
    }

    @Test(
        "Redis down: /readyz stays 200 naming redis down, a webhook is accepted and stored with its event in the outbox, and the relay publishes it once Redis is back"
    )
    func redisOutage() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let harness = try await PaymentsHarness.make(redisURL: servers.redisURL, settings: ["REDIS_POOL_WAIT": "1s"])
            let id = "evt_redis_outage_\(UUID().uuidString.prefix(8))"
            let body = Deliveries.stripeEvent(id: id, type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
            try await harness.run { client in
                try await servers.stopRedis()
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .ok)
                    let text = String(buffer: response.body)
                    #expect(text.contains(#""redis":"down""#) && text.contains(#""postgres":"up""#), "\(text)")
                }
                let answer = try await client.stripe(body)
                #expect(answer.status == .ok && answer["duplicate"] == false)
                try await servers.startRedis()
            }
            #expect(try await harness.count("SELECT count(*) FROM payments.provider_events WHERE provider_event_id = \(id)") == 1)
            #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL") == 1)
            let redis = try RedisClient.forTests(url: servers.redisURL, connections: 2)
            var relayConfiguration = OutboxRelay.Configuration()
            relayConfiguration.epochKey = "outbox:epoch:test-\(UUID().uuidString.prefix(8))"
            let relay = OutboxRelay(postgres: harness.postgres, redis: redis, configuration: relayConfiguration, logger: TestEnvironment.logger)
            let task = Task { try await relay.run() }
            let deadline = ContinuousClock.now + .seconds(20)
            while try await harness.count("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL") > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            task.cancel()
            #expect(try await harness.count("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL") == 0)
            let published = try await redis.xrange(Streams.stream(for: .paymentsWebhook)).compactMap { $0.string(Streams.envelopeField) }
            #expect(published.count == 1)
            await redis.shutdown()
            await harness.shutdown()
        }
    }

    @Test("Postgres down during a webhook: 503 and nothing half-stored; the retried delivery after recovery is stored once")
    func postgresOutage() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            let harness = try await PaymentsHarness.make(server: servers.databaseURL, settings: ["DATABASE_POOL_WAIT": "2s"])
            let postgres = harness.postgres
            let body = Deliveries.stripeEvent(id: "evt_outage", type: "payment_intent.succeeded", object: Deliveries.paymentIntent())
            try await harness.run { client in
                #expect(try await client.stripe(Deliveries.stripeEvent(type: "customer.created", object: ["id": "cus_1"])).status == .ok)
                try await servers.stopPostgres()
                let during = try await client.stripe(body)
                #expect(during.status == .serviceUnavailable)
                #expect(during.errorCode == "dependency_unavailable")
                #expect(during.headers[.retryAfter] != nil)
                try await servers.startPostgres()
                #expect(try await postgres.count("SELECT count(*) FROM payments.provider_events WHERE provider_event_id = 'evt_outage'") == 0)
                #expect(try await postgres.count("SELECT count(*) FROM messaging.outbox") == 0)
                // The sender retries (the signature's timestamp is still within tolerance).
                var retried = try await client.stripe(body)
                for _ in 0..<20 where retried.status == .serviceUnavailable {
                    try await Task.sleep(for: .milliseconds(250))
                    retried = try await client.stripe(body)
                }
                #expect(retried.status == .ok && retried["duplicate"] == false)
                #expect(try await client.stripe(body)["duplicate"] == true)
            }
            #expect(try await harness.count("SELECT count(*) FROM payments.provider_events WHERE provider_event_id = 'evt_outage'") == 1)
            #expect(try await harness.count("SELECT count(*) FROM messaging.outbox") == 1)
        }
    }
}
