import Foundation
import Glibc
import HTTPTypes
import HummingbirdTesting
import Postgres
import TestSupport
import Testing

/// The four service executables, each with the settings it requires.
let services: [(name: String, environment: [String: String], requiredSecret: String)] = [
    ("booking", ["ADMIN_TOKEN": "admin", "API_KEYS": "key"], "API_KEYS"),
    (
        "payments-webhook",
        [
            "ADMIN_TOKEN": "admin", "STRIPE_WEBHOOK_SECRETS": "whsec_test", "PAYMENT_EVENTS_SECRETS": "whsec_dGVzdA==",
            "PROVIDER_API_KEY": "sk_test_lifecycle", "PROVIDER_BASE_URL": "http://127.0.0.1:9",
        ],
        "STRIPE_WEBHOOK_SECRETS"
    ),
    ("payout", ["ADMIN_TOKEN": "admin", "PROVIDER_API_KEY": "sk_test_lifecycle", "PROVIDER_BASE_URL": "http://127.0.0.1:9"], "PROVIDER_API_KEY"),
    (
        "notification", ["ADMIN_TOKEN": "admin", "NOTIFICATION_SECRETS_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],
        "NOTIFICATION_SECRETS_KEY"
    ),
]

/// GET on a running service (with `token` as its bearer token, if given); nil while nothing answers.
func get(_ path: String, port: Int, token: String? = nil) async -> (status: Int, body: String)? {
    let client = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(5)))
    client.connect()
    defer { Task { try? await client.shutdown() } }
    let headers: HTTPFields = token.map { [.authorization: "Bearer \($0)"] } ?? [:]
    guard let response = try? await client.get(path, headers: headers) else { return nil }
    return (Int(response.status.code), response.body.map { String(buffer: $0) } ?? "")
}

/// Polls until `path` answers `status`, for at most `timeout`.
func waitFor(_ path: String, port: Int, status: Int, timeout: Duration = .seconds(30)) async -> (status: Int, body: String)? {
    let deadline = ContinuousClock.now + timeout
    var last: (status: Int, body: String)?
    while ContinuousClock.now < deadline {
        last = await get(path, port: port)
        if last?.status == status { return last }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return last
}

@Suite("Executables: start, health, readiness, SIGTERM, configuration errors")
struct ExecutableLifecycleTests {
    @Test(
        "each executable answers /healthz and /readyz, reports Redis down by name (booking unready, the others ready), recovers, and exits 0 within 5 s of SIGTERM"
    )
    func lifecycle() async throws {
        try await DisruptableServers.withExclusiveAccess { servers in
            var running: [ServiceProcess] = []
            defer { for service in running { Task { await service.child.kill() } } }
            for service in services {
                let port = try freePort()
                let environment = service.environment.merging([
                    "DATABASE_URL": servers.databaseURL, "REDIS_URL": servers.redisURL, "PORT": String(port), "HOST": "127.0.0.1",
                    "LOG_LEVEL": "info",
                ]) { _, new in new }
                running.append(try ServiceProcess.start(service.name, environment: environment, port: port))
            }
            for service in running {
                let health = await waitFor("/healthz", port: service.port, status: 200)
                #expect(health?.status == 200, "\(service.name) /healthz: \(service.output)")
                let ready = await waitFor("/readyz", port: service.port, status: 200, timeout: .seconds(10))
                #expect(ready?.status == 200, "\(service.name) /readyz")
                let metrics = await get("/metrics", port: service.port)
                #expect(metrics?.status == 200)
                #expect(metrics?.body.contains("hb_requests") == true, "\(service.name) /metrics counts requests")
            }

            try await servers.stopRedis()
            for service in running {
                if service.name == "booking" {
                    // Holds live in Redis: booking leaves rotation.
                    let notReady = await waitFor("/readyz", port: service.port, status: 503, timeout: .seconds(10))
                    #expect(notReady?.status == 503, "\(service.name) /readyz with Redis stopped")
                    #expect(notReady?.body.contains("not ready: redis unavailable") == true, "only Redis is named: \(notReady?.body ?? "")")
                } else {
                    // Their routes need only Postgres: ready, with Redis reported down.
                    var answer = await get("/readyz", port: service.port)
                    let deadline = ContinuousClock.now + .seconds(10)
                    while answer?.body.contains(#""redis":"down""#) != true, ContinuousClock.now < deadline {
                        try? await Task.sleep(for: .milliseconds(100))
                        answer = await get("/readyz", port: service.port)
                    }
                    #expect(answer?.status == 200, "\(service.name) /readyz with Redis stopped: \(answer?.body ?? "")")
                    #expect(answer?.body.contains(#""redis":"down""#) == true, "\(service.name) reports Redis down")
                }
                #expect((await get("/healthz", port: service.port))?.status == 200, "\(service.name) is alive while Redis is down")
            }
            try await servers.startRedis()
            for service in running {
                let ready = await waitFor("/readyz", port: service.port, status: 200, timeout: .seconds(10))
                #expect(ready?.status == 200, "\(service.name) /readyz after Redis came back")
            }

            for service in running {
                let stopRequested = ContinuousClock.now
                service.child.send(SIGTERM)
                let termination = await service.child.termination(within: .seconds(5))
                #expect(termination == .exited(0), "\(service.name) after SIGTERM: \(String(describing: termination)); output: \(service.output)")
                #expect(ContinuousClock.now - stopRequested < .seconds(5))
            }
            // Logs are JSON lines.
            for service in running {
                let lines = service.output.split(separator: "\n").filter { !$0.isEmpty }
                #expect(!lines.isEmpty)
                for line in lines {
                    let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    #expect(object?["service"] as? String == service.name, "not a JSON log line: \(line)")
                }
            }
        }
    }

    @Test(
        "with SHUTDOWN_DRAIN_DELAY, SIGTERM makes each executable's /readyz 503 shutting_down while /healthz and its routes are still served, and it exits 0 after the delay"
    )
    func shutdownDrain() async throws {
        let url = try await TestDatabase.create(prefix: "drain")
        let migrate = try ServiceProcess.start("booking", arguments: ["migrate"], environment: ["DATABASE_URL": url])
        #expect(await migrate.child.termination(within: .seconds(30)) == .exited(0), "\(migrate.output)")
        let delay = Duration.seconds(6)
        var running: [ServiceProcess] = []
        defer { for service in running { Task { await service.child.kill() } } }
        for service in services {
            let port = try freePort()
            let environment = service.environment.merging([
                "DATABASE_URL": url, "REDIS_URL": try TestEnvironment.redisURL(), "PORT": String(port), "HOST": "127.0.0.1",
                "LOG_LEVEL": "info", "SHUTDOWN_DRAIN_DELAY": "6s",
            ]) { _, new in new }
            running.append(try ServiceProcess.start(service.name, environment: environment, port: port))
        }
        for service in running {
            let ready = await waitFor("/readyz", port: service.port, status: 200, timeout: .seconds(30))
            #expect(ready?.status == 200, "\(service.name) /readyz: \(service.output)")
        }
        let stopRequested = ContinuousClock.now
        for service in running { service.child.send(SIGTERM) }
        for service in running {
            let draining = await waitFor("/readyz", port: service.port, status: 503, timeout: .seconds(2))
            #expect(draining?.status == 503, "\(service.name) /readyz after SIGTERM: \(service.output)")
            #expect(draining?.body.contains("shutting_down") == true, "\(service.name): \(draining?.body ?? "")")
            #expect(await get("/healthz", port: service.port)?.status == 200, "\(service.name) still serves /healthz")
            // An admin route that reads Postgres: the routes and the pools still work while draining.
            #expect(await get("/v1/admin/dead-letters", port: service.port, token: "admin")?.status == 200, "\(service.name) still serves its routes")
        }
        #expect(ContinuousClock.now - stopRequested < delay, "the checks above ran within the drain")
        for service in running {
            let termination = await service.child.termination(within: delay + .seconds(10))
            #expect(termination == .exited(0), "\(service.name) after SIGTERM: \(String(describing: termination)); output: \(service.output)")
        }
        let stopped = ContinuousClock.now - stopRequested
        #expect(stopped >= delay, "stopped after \(stopped), before the drain's \(delay)")
        #expect(stopped < delay + .seconds(10), "stopped after \(stopped)")
        for service in running {
            #expect(service.output.contains("SHUTDOWN_DRAIN_DELAY"), "\(service.name) logs the drain")
        }
    }

    @Test("started without a required secret, each executable exits 2 with one line naming it", arguments: services.map(\.name))
    func missingSecret(name: String) async throws {
        guard let service = services.first(where: { $0.name == name }) else { return }
        var environment = service.environment.merging([
            "DATABASE_URL": try TestEnvironment.databaseURL(), "REDIS_URL": try TestEnvironment.redisURL(), "PORT": String(try freePort()),
        ]) { _, new in new }
        environment[service.requiredSecret] = nil
        let process = try ServiceProcess.start(name, environment: environment)
        let termination = await process.child.termination(within: .seconds(10))
        #expect(termination == .exited(2))
        let lines = process.output.split(separator: "\n")
        #expect(lines.count == 1, "output: \(process.output)")
        #expect(lines.first?.contains(service.requiredSecret) == true)
        // An empty value is no value: a secret never falls back to empty.
        environment[service.requiredSecret] = ""
        let empty = try ServiceProcess.start(name, environment: environment)
        #expect(await empty.child.termination(within: .seconds(10)) == .exited(2))
        #expect(empty.output.contains(service.requiredSecret))
    }

    @Test("two `migrate` processes started at the same moment apply each migration exactly once")
    func concurrentMigrateProcesses() async throws {
        let url = try await TestDatabase.create(prefix: "e2e")
        let first = try ServiceProcess.start("booking", arguments: ["migrate"], environment: ["DATABASE_URL": url])
        let second = try ServiceProcess.start("payout", arguments: ["migrate"], environment: ["DATABASE_URL": url])
        #expect(await first.child.termination(within: .seconds(30)) == .exited(0), "\(first.output)")
        #expect(await second.child.termination(within: .seconds(30)) == .exited(0), "\(second.output)")
        let client = try TestDatabase.client(url: url, connections: 1)
        defer { Task { await client.shutdown() } }
        let rows = try await client.query("SELECT count(*), count(DISTINCT version) FROM public.schema_migrations")
        let applied = try rows[0].decode(Int.self, at: 0)
        #expect(applied >= 1)
        #expect(try rows[0].decode(Int.self, at: 1) == applied)
        let applyLines = (first.output + second.output).split(separator: "\n").filter { $0.contains("applied migration") }
        #expect(applyLines.count == applied)
    }
}

@Suite("dlq command")
struct DeadLetterCommandTests {
    @Test("`dlq list` prints the open entries as JSON; `dlq resolve` closes one; an unknown id fails")
    func listResolveShow() async throws {
        let url = try await TestDatabase.create(prefix: "cli")
        let migrate = try ServiceProcess.start("booking", arguments: ["migrate"], environment: ["DATABASE_URL": url])
        #expect(await migrate.child.termination(within: .seconds(30)) == .exited(0))
        let client = try TestDatabase.client(url: url, connections: 1)
        defer { Task { await client.shutdown() } }
        let id = UUID()
        try await client.query(
            """
            INSERT INTO messaging.dead_letters (id, kind, stream, consumer, event_id, event_type, aggregate_id, envelope, error, attempts,
                first_failed_at, last_failed_at)
            VALUES (\(id), 'review', 'stream:payments', 'booking-saga', \(UUID()), 'payment.succeeded', 'b-1', '{}'::jsonb, 'late payment', 1, now(), now())
            """
        )
        let list = try ServiceProcess.start("payout", arguments: ["dlq", "list", "--status", "open"], environment: ["DATABASE_URL": url])
        #expect(await list.child.termination(within: .seconds(30)) == .exited(0))
        #expect(list.output.contains(id.uuidString.lowercased()))
        #expect(list.output.contains("late payment"))
        let resolve = try ServiceProcess.start(
            "booking", arguments: ["dlq", "resolve", id.uuidString, "--note", "refunded by hand", "--operator", "alice"],
            environment: ["DATABASE_URL": url]
        )
        #expect(await resolve.child.termination(within: .seconds(30)) == .exited(0))
        let status = try await client.query("SELECT status, operator FROM messaging.dead_letters WHERE id = \(id)")
        #expect(try status[0].decode(String.self, at: 0) == "resolved")
        #expect(try status[0].decode(String.self, at: 1) == "alice")
        // The command shares the store's transaction, so it is audited like the HTTP route.
        let audit = try await client.query("SELECT service, operator, route, action, target_id, outcome, request_id FROM platform.audit_log")
        #expect(audit.count == 1)
        #expect(try audit.first?.decode(String.self, at: 0) == "booking" && audit.first?.decode(String.self, at: 1) == "alice")
        #expect(
            try audit.first?.decode(String.self, at: 2) == "cli: dlq resolve" && audit.first?.decode(String.self, at: 3) == "dead_letter.resolved")
        #expect(try audit.first?.decode(String.self, at: 4) == id.uuidString.lowercased() && audit.first?.decode(String.self, at: 5) == "resolved")
        #expect(try audit.first?.decode(String?.self, at: 6) == nil)
        let missing = try ServiceProcess.start("booking", arguments: ["dlq", "show", UUID().uuidString], environment: ["DATABASE_URL": url])
        #expect(await missing.child.termination(within: .seconds(30)) != .exited(0))
    }
}

@Suite("Outbox relay connection")
struct RelayConnectionTests {
    @Test("with DATABASE_POOL_SIZE=1 the service still reaches Postgres while its outbox relay leads on a connection of its own")
    func relayDoesNotTakeAPoolConnection() async throws {
        let url = try await TestDatabase.create(prefix: "relay")
        let migrate = try ServiceProcess.start("booking", arguments: ["migrate"], environment: ["DATABASE_URL": url])
        #expect(await migrate.child.termination(within: .seconds(30)) == .exited(0))
        let port = try freePort()
        let service = try ServiceProcess.start(
            "booking",
            environment: [
                "DATABASE_URL": url, "REDIS_URL": try TestEnvironment.redisURL(), "ADMIN_TOKEN": "admin", "API_KEYS": "key", "PORT": String(port),
                "HOST": "127.0.0.1", "DATABASE_POOL_SIZE": "1", "DATABASE_POOL_WAIT": "1s",
            ],
            port: port)
        defer { Task { await service.child.kill() } }
        #expect(await waitFor("/healthz", port: port, status: 200)?.status == 200, "\(service.output)")
        let client = try TestDatabase.client(url: url, connections: 1)
        defer { Task { await client.shutdown() } }
        // Wait until the relay leads: it holds its advisory lock on its own session.
        var leading = false
        for _ in 0..<100 where !leading {
            let rows = try await client.query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'booking-outbox-relay'")
            leading = try rows[0].decode(Int.self, at: 0) == 1
            if !leading { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(leading, "the relay runs on its own connection: \(service.output)")
        // Every readiness check needs the one pool connection; none waits behind the relay.
        for _ in 0..<5 {
            let ready = await get("/readyz", port: port)
            #expect(ready?.status == 200, "\(ready?.body ?? "no answer")")
        }
    }
}

@Suite("test ports")
struct TestPortTests {
    @Test("freePort gives each port once, below the kernel's ephemeral range, and a server can listen on it")
    func portsAreUniqueAndOutsideTheEphemeralRange() throws {
        let ports = try (0..<200).map { _ in try freePort() }
        #expect(Set(ports).count == ports.count)
        let range = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        if let ephemeralStart = range.split(whereSeparator: \.isWhitespace).first.flatMap({ Int($0) }), ephemeralStart >= 12_000 {
            #expect(ports.allSatisfy { $0 >= 10_000 && $0 < ephemeralStart }, "\(ports.filter { $0 >= ephemeralStart })")
        }
        // A server can listen on what it was given.
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        let listening = bindLoopback(descriptor, port: ports[0])
        #expect(listening && listen(descriptor, 1) == 0)
    }
}
