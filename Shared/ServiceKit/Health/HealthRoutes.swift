import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import Redis
import SharedModel
import Synchronization

/// A dependency `/readyz` checks: Postgres, Redis, or anything a service adds.
public struct DependencyCheck: Sendable {
    public let name: String
    public let check: @Sendable () async throws -> Void

    public init(name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }

    /// `SELECT 1` through the pool.
    public static func postgres(_ client: PostgresClient) -> DependencyCheck {
        DependencyCheck(name: "postgres") { try await client.query("SELECT 1") }
    }

    /// `PING` through the pool.
    public static func redis(_ client: RedisClient) -> DependencyCheck {
        DependencyCheck(name: "redis") { try await client.send("PING") }
    }
}

/// `/healthz` (the process is alive), `/readyz` (every dependency answers; 503 naming the ones that do
/// not) and `/metrics` (Prometheus text format).
public enum HealthRoutes {
    /// How long a readiness check may take before its dependency counts as down.
    public static let checkTimeout: Duration = .seconds(2)

    public static func add(to router: Router<ServiceRequestContext>, checks: [DependencyCheck]) {
        router.get("/healthz") { _, _ -> Response in
            jsonResponse(.ok, #"{"status":"ok"}"#)
        }
        router.get("/readyz") { _, context -> Response in
            let results = await withTaskGroup(of: (String, Bool).self) { group in
                for dependency in checks {
                    group.addTask { (dependency.name, await passes(dependency, within: checkTimeout)) }
                }
                return await group.reduce(into: [String: Bool]()) { $0[$1.0] = $1.1 }
            }
            let down = results.filter { !$0.value }.keys.sorted()
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
