import Foundation
import Synchronization

/// The second Postgres and Redis that `scripts/test` starts for tests that stop, restart or flush a
/// server. Access is exclusive across the whole test process (every suite of every target), so a
/// disruption never hits a test that did not ask for it.
public struct DisruptableServers: Sendable {
    public let databaseURL: String
    public let redisURL: String
    private let postgresControl: String
    private let redisControl: String

    /// Runs `body` while no other test uses the disruptable servers. Both servers are running when the
    /// body starts (a previous test that stopped one is undone first).
    public static func withExclusiveAccess<T>(_ body: (DisruptableServers) async throws -> T) async throws -> T {
        let servers = DisruptableServers(
            databaseURL: try TestEnvironment.value("DISRUPTABLE_DATABASE_URL"),
            redisURL: try TestEnvironment.value("DISRUPTABLE_REDIS_URL"),
            postgresControl: try TestEnvironment.value("DISRUPTABLE_PG_CTL"),
            redisControl: try TestEnvironment.value("DISRUPTABLE_REDIS_CTL")
        )
        await exclusiveAccess.acquire()
        let section = SectionProcesses()
        do {
            try await servers.ensureRunning()
            let value = try await $section.withValue(section) { try await body(servers) }
            await section.killAll()
            try await servers.ensureRunning()
            await exclusiveAccess.release()
            return value
        } catch {
            await section.killAll()
            try? await servers.ensureRunning()
            await exclusiveAccess.release()
            throw error
        }
    }

    /// The processes started inside the running exclusive section (through ``ServiceProcess``): all are
    /// stopped before the servers go to the next test, also those a test meant to stop in a deferred
    /// task, so none of them publishes into the next test's streams or tables.
    @TaskLocal static var section: SectionProcesses?

    /// Records a child started by the current task, when inside an exclusive section.
    static func started(_ child: ChildProcess) {
        section?.append(child)
    }

    final class SectionProcesses: Sendable {
        private let children = Mutex<[ChildProcess]>([])
        func append(_ child: ChildProcess) { children.withLock { $0.append(child) } }
        func killAll() async {
            for child in children.withLock({ $0 }) { await child.kill() }
        }
    }

    private func ensureRunning() async throws {
        try await runControl(postgresControl, "start")
        try await runControl(redisControl, "start")
    }

    public func restartPostgres() async throws { try await runControl(postgresControl, "restart") }
    public func stopPostgres() async throws { try await runControl(postgresControl, "stop") }
    public func startPostgres() async throws { try await runControl(postgresControl, "start") }
    /// Restarts Redis empty (it runs without persistence).
    public func restartRedis() async throws { try await runControl(redisControl, "restart") }
    public func stopRedis() async throws { try await runControl(redisControl, "stop") }
    public func startRedis() async throws { try await runControl(redisControl, "start") }
}

/// A process-wide FIFO async lock.
actor AsyncLock {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !locked {
            locked = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            locked = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}

private let exclusiveAccess = AsyncLock()

/// Runs a control script without blocking a cooperative thread.
func runControl(_ script: String, _ verb: String) async throws {
    try await runProcess(script, [verb])
}
