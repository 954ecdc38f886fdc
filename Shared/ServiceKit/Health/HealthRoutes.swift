import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import Redis
import SharedModel
import Synchronization

/// A dependency `/readyz` checks: Postgres, Redis, or anything a service adds. A required one that
/// does not answer makes the process unready (503); one that is not required is reported in `checks`
/// and leaves the process ready, for a dependency only background work needs.
public struct DependencyCheck: Sendable {
    public let name: String
    public let required: Bool
    public let check: @Sendable () async throws -> Void

    public init(name: String, required: Bool = true, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.required = required
        self.check = check
    }

    /// A round trip through the pool.
    public static func postgres(_ client: PostgresClient) -> DependencyCheck {
        DependencyCheck(name: "postgres") { try await client.ping() }
    }

    /// `PING` through the pool.
    public static func redis(_ client: RedisClient, required: Bool = true) -> DependencyCheck {
        DependencyCheck(name: "redis", required: required) { try await client.send("PING") }
    }
}

/// `/healthz` (the process is alive), `/readyz` (every required dependency answers; 503 naming the
/// ones that do not) and `/metrics` (Prometheus text format).
public enum HealthRoutes {
    /// How long a readiness check may take before its dependency counts as down.
    public static let checkTimeout: Duration = .seconds(2)

    /// How long one readiness probe's result answers `/readyz`, so a burst of probes (load balancers,
    /// orchestrators, an attacker) costs the dependencies one check per dependency per second.
    public static let readinessCacheDuration: Duration = .seconds(1)

    /// Adds `/healthz`, `/readyz` (dependency checks shared by every request within
    /// `cacheDuration`; concurrent requests wait for the one probe in flight; 503 `shutting_down`
    /// without a check once `drain` began) and `/metrics`.
    public static func add(
        to router: Router<ServiceRequestContext>, checks: [DependencyCheck],
        cacheReadinessFor cacheDuration: Duration = HealthRoutes.readinessCacheDuration, drain: ShutdownDrain? = nil
    ) {
        let readiness = ReadinessProbe(checks: checks, timeout: checkTimeout, cacheDuration: cacheDuration)
        let optional = Set(checks.filter { !$0.required }.map(\.name))
        router.get("/healthz") { _, _ -> Response in
            jsonResponse(.ok, #"{"status":"ok"}"#)
        }
        router.get("/readyz") { _, context -> Response in
            if let drain, drain.isDraining {
                throw APIError(.serviceUnavailable, code: .shuttingDown, message: "not ready: shutting down")
            }
            let results = await readiness.results()
            let down = results.filter { !$0.value && !optional.contains($0.key) }.keys.sorted()
            let details = results.mapValues { JSONValue.string($0 ? "up" : "down") }
            if down.isEmpty {
                let body = (try? JSONEncoder.platform.encode(["status": JSONValue.string("ready"), "checks": .object(details)])) ?? Data()
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
            }
            context.logger.warning("not ready", metadata: ["down": .array(down.map { .string($0) })])
            throw APIError.dependencyUnavailable("not ready: \(down.joined(separator: ", ")) unavailable", details: details)
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: PlatformMetrics.exposition()))
            )
        }
    }

    /// Runs the check, answering false if it throws or has not finished within `timeout`. A check that
    /// hangs is left to finish on its own; the probe does not wait for it.
    static func passes(_ dependency: DependencyCheck, within timeout: Duration) async -> Bool {
        let outcome = Mutex<CheckedContinuation<Bool, Never>?>(nil)
        return await withCheckedContinuation { continuation in
            outcome.withLock { $0 = continuation }
            let finish: @Sendable (Bool) -> Void = { passed in
                outcome.withLock { pending in
                    pending?.resume(returning: passed)
                    pending = nil
                }
            }
            Task {
                do {
                    try await dependency.check()
                    finish(true)
                } catch {
                    finish(false)
                }
            }
            Task {
                try? await Task.sleep(for: timeout)
                finish(false)
            }
        }
    }

    private static func jsonResponse(_ status: HTTPResponse.Status, _ json: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}

/// The dependency checks behind `/readyz`, run at most once per `cacheDuration`: a request within that
/// time of the last probe's start gets its result, and requests arriving while a probe runs wait for it.
final class ReadinessProbe: Sendable {
    private struct State {
        var probe: Task<[String: Bool], Never>?
        var startedAt: ContinuousClock.Instant?
    }
    private let checks: [DependencyCheck]
    private let timeout: Duration
    private let cacheDuration: Duration
    private let state = Mutex(State())

    init(checks: [DependencyCheck], timeout: Duration, cacheDuration: Duration) {
        self.checks = checks
        self.timeout = timeout
        self.cacheDuration = cacheDuration
    }

    /// Each dependency by name: true when it answered.
    func results() async -> [String: Bool] {
        let now = ContinuousClock.now
        let probe = state.withLock { state in
            if let probe = state.probe, let startedAt = state.startedAt, now - startedAt < cacheDuration {
                return probe
            }
            let checks = checks
            let timeout = timeout
            let probe = Task {
                await withTaskGroup(of: (String, Bool).self) { group in
                    for dependency in checks {
                        group.addTask { (dependency.name, await HealthRoutes.passes(dependency, within: timeout)) }
                    }
                    return await group.reduce(into: [String: Bool]()) { $0[$1.0] = $1.1 }
                }
            }
            state.probe = probe
            state.startedAt = now
            return probe
        }
        return await probe.value
    }
}
