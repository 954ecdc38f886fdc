import AsyncHTTPClient
import Foundation
import Glibc
import Messaging
import NIOCore
import Postgres
import ServiceTestSupport
import SharedModel
import TestSupport
import Testing

@testable import Notification

/// The `notification` executable as a process, on the disruptable Postgres and Redis: events enter
/// through the outbox (its relay publishes them, its fan-out consumes them) and leave as HTTP
/// requests to a loopback receiver.
@Suite("Notification process: kill -9 and Redis restarted empty lose nothing")
struct NotificationProcessTests {
    static let secretsKey = Data(repeating: 9, count: 32).base64EncodedString()

    static func start(databaseURL: String, redisURL: String, extra: [String: String] = [:]) throws -> ServiceProcess {
        let port = try freePort()
        let environment = [
            "DATABASE_URL": databaseURL, "REDIS_URL": redisURL, "PORT": String(port), "HOST": "127.0.0.1", "ADMIN_TOKEN": "admin",
            "NOTIFICATION_SECRETS_KEY": secretsKey, "NOTIFICATION_ALLOW_PRIVATE_NETWORKS": "true", "LOG_LEVEL": "warning",
            "NOTIFICATION_TIMEOUT": "2s",
        ].merging(extra) { _, new in new }
        return try ServiceProcess.start("notification", arguments: ["serve"], environment: environment, port: port)
    }

    /// Creates an endpoint through the running process's API.
    static func createEndpoint(_ url: String, port: Int) async throws -> UUID {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/endpoints")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer admin")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(["url": url])))
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5)), response.status == .created,
                let body = try? await response.body.collect(upTo: 1 << 20),
                let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any], let id = object["endpoint_id"] as? String,
                let uuid = UUID(uuidString: id)
            {
                return uuid
            }
            guard ContinuousClock.now < deadline else { throw HarnessError("the notification process did not answer POST /v1/endpoints") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Publishes `envelopes` as producers do: outbox rows the process's relay sends to Redis.
    static func publish(_ envelopes: [EventEnvelope], postgres: PostgresClient) async throws {
        try await postgres.withTransaction { transaction in
            for envelope in envelopes { try Outbox.appendExisting(envelope, stream: Streams.booking, in: transaction) }
        }
    }

    static func waitUntil(_ timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    @Test(
        "killed with kill -9 while 1,000 deliveries are pending, the restarted process completes every one; a webhook-id arrives twice only if it was in flight at the crash"
    )
    func killNine() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            try await servers.restartRedis()
            let receiver = try await TestReceiver.start()
            defer { Task { await receiver.stop() } }
            let paths = (0..<5).map { "/crash/\($0)" }
            for path in paths { receiver.on(path) { _ in .init(delay: .milliseconds(15)) } }
            let databaseURL = try await ServiceHarness.migratedDatabase(prefix: "notification_crash", on: servers.databaseURL)
            let postgres = try TestDatabase.client(url: databaseURL)
            defer { Task { await postgres.shutdown() } }
            var process = try Self.start(databaseURL: databaseURL, redisURL: servers.redisURL)
            defer { Task { [process] in await process.child.kill() } }
            for path in paths { _ = try await Self.createEndpoint(receiver.url(path), port: process.port) }
            let occurred = Date().addingTimeInterval(1)
            let events = try (0..<200).map { _ in try NotificationHarness.event(occurredAt: occurred) }
            try await Self.publish(events, postgres: postgres)

            // Every delivery exists and some went out: kill it mid-stream.
            #expect(
                try await Self.waitUntil(.seconds(20)) {
                    try await postgres.count("SELECT count(*) FROM notification.deliveries") == 1_000 && receiver.requests().count >= 50
                }, "fan-out: \(process.output.suffix(2_000))")
            process.child.send(SIGKILL)
            await process.child.kill()
            let sentBeforeCrash = receiver.requests().count
            let pending = try await postgres.count("SELECT count(*) FROM notification.deliveries WHERE status = 'pending'")
            #expect(pending > 0, "the crash left work: \(pending) pending, \(sentBeforeCrash) received")

            process = try Self.start(databaseURL: databaseURL, redisURL: servers.redisURL)
            #expect(
                try await Self.waitUntil(.seconds(40)) {
                    try await postgres.count("SELECT count(*) FROM notification.deliveries WHERE status = 'succeeded'") == 1_000
                }, "after the restart every delivery completes: \(process.output.suffix(2_000))")

            var seen: [String: Int] = [:]
            for request in receiver.requests() { seen["\(request.path) \(request.webhookID ?? "")", default: 0] += 1 }
            let expected = Set(paths.flatMap { path in events.map { "\(path) \($0.id.description)" } })
            #expect(Set(seen.keys) == expected, "every event reached every endpoint")
            let duplicates = seen.values.reduce(0) { $0 + $1 - 1 }
            // At most the attempts in flight at the crash: 5 endpoints x 4 each.
            #expect(
                duplicates <= 20, "\(duplicates) duplicate deliveries (\(sentBeforeCrash) received before the crash, \(pending) pending after it)")
            #expect(try await postgres.count("SELECT count(*) FROM notification.deliveries WHERE attempt_count <> 1") == 0)
        }
    }

    @Test("Redis restarted empty mid-run: the process keeps consuming without a restart and nothing is lost")
    func redisRestartedEmpty() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            try await servers.restartRedis()
            let receiver = try await TestReceiver.start()
            defer { Task { await receiver.stop() } }
            let databaseURL = try await ServiceHarness.migratedDatabase(prefix: "notification_redis", on: servers.databaseURL)
            let postgres = try TestDatabase.client(url: databaseURL)
            defer { Task { await postgres.shutdown() } }
            let process = try Self.start(databaseURL: databaseURL, redisURL: servers.redisURL)
            defer { Task { await process.child.kill() } }
            _ = try await Self.createEndpoint(receiver.url("/redis"), port: process.port)
            let occurred = Date().addingTimeInterval(1)
            let before = try (0..<20).map { _ in try NotificationHarness.event(occurredAt: occurred) }
            try await Self.publish(before, postgres: postgres)
            #expect(await receiver.waitFor(20, at: "/redis", timeout: .seconds(20)).count == 20)

            try await servers.restartRedis()
            let after = try (0..<20).map { _ in try NotificationHarness.event(occurredAt: Date().addingTimeInterval(1)) }
            try await Self.publish(after, postgres: postgres)
            let all = await receiver.waitFor(40, at: "/redis", timeout: .seconds(30))
            #expect(Set(all.compactMap(\.webhookID)) == Set((before + after).map(\.id.description)), "\(process.output.suffix(2_000))")
            #expect(process.child.isRunning)
            // The relay republished everything after the loss; the fan-out's inbox kept the repeats out.
            try await Task.sleep(for: .seconds(1))
            let kinds = try await postgres.query(
                """
                SELECT event_type || ' ' || count(*) || ' deliveries, ' || count(DISTINCT event_id) || ' events, '
                    || count(DISTINCT endpoint_id) || ' endpoints, origins ' || string_agg(DISTINCT origin, '/')
                FROM notification.deliveries GROUP BY event_type ORDER BY 1
                """
            ).map { try $0.decode(String.self, at: 0) }
            #expect(try await postgres.count("SELECT count(*) FROM notification.deliveries") == 40, "deliveries by type: \(kinds)")
            #expect(receiver.requests("/redis").count == 40)
        }
    }
}
