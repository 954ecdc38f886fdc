import Foundation
import Logging
import Synchronization

/// Commands from many callers sharing a few connections: pipelining across callers.
///
/// Each lane owns one hiredis connection and one OS thread, so hiredis' blocking calls still never run
/// on Swift's cooperative pool. The thread sleeps until commands are queued, then takes every command
/// queued since its last round trip (up to ``batchLimit``), writes them in one go, reads the replies in
/// order and resumes each caller with its own. Under load one round trip carries many callers'
/// commands: one wake-up, one write and a few reads, instead of a pool lease, a thread hop, a write and
/// a read per command. One caller at a time costs what a leased connection costs.
///
/// Only commands that neither block their connection nor change its state may share one
/// (``RedisClient/sharesConnection(_:)``): a `BLPOP` would hold up every command queued behind it, and
/// `MULTI` or `SELECT` would change what other callers' commands mean.
///
/// A connection that breaks fails the commands of the round trip whose replies were not read yet with
/// `.connectionLost` (their outcome is unknown) and reconnects for the next one, as a pooled connection
/// does. ``close()`` fails every queued command and every later one.
final class RedisMultiplexer: Sendable {
    /// The most commands one round trip carries (a caller's pipeline always goes whole).
    static let batchLimit = 256
    /// The most commands one lane holds queued; beyond it callers fail at once with `.poolExhausted`.
    static let maximumQueued = 10_000

    private let lanes: [Lane]
    private let nextLane = Atomic<Int>(0)

    init(configuration: RedisClient.Configuration, logger: Logger) {
        lanes = (0..<max(1, configuration.multiplexedConnections)).map { index in
            Lane(
                connection: HiredisConnection(configuration: configuration, commandTimeout: configuration.commandTimeout, logger: logger),
                name: "redis-mux-\(index)")
        }
    }

    deinit {
        close()
    }

    /// Sends `commands` together, in order, in one of the lanes' next round trip; returns their replies,
    /// error replies included as `.error`.
    func exchange(_ commands: [[RedisArgument]]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        let lane = lanes[nextLane.add(1, ordering: .relaxed).oldValue % lanes.count]
        return try await withCheckedThrowingContinuation { continuation in
            lane.submit(Pending(commands: commands, continuation: continuation))
        }
    }

    /// How many commands and round trips the lanes have made so far (for tests and diagnostics).
    var statistics: (commands: Int, roundTrips: Int) {
        lanes.reduce((0, 0)) { total, lane in
            let counts = lane.counts.withLock { $0 }
            return (total.0 + counts.commands, total.1 + counts.roundTrips)
        }
    }

    /// Fails every queued and later command; each lane's thread finishes its round trip, closes its
    /// connection and exits.
    func close() {
        for lane in lanes { lane.close() }
    }
}

/// A caller's commands and where their replies go.
private struct Pending: Sendable {
    let commands: [[RedisArgument]]
    let continuation: CheckedContinuation<[RedisReply], any Error>
}

/// One connection and its thread.
private final class Lane: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var queuedCommands = 0
    private var closed = false
    /// Touched only by the lane's thread (and by `deinit`, after the thread let go of the lane).
    private let connection: HiredisConnection
    let counts = Mutex<(commands: Int, roundTrips: Int)>((0, 0))

    init(connection: HiredisConnection, name: String) {
        self.connection = connection
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    func submit(_ pending: Pending) {
        condition.lock()
        guard !closed else {
            condition.unlock()
            pending.continuation.resume(throwing: RedisError(code: .poolExhausted, message: "the redis client is closed"))
            return
        }
        guard queuedCommands + pending.commands.count <= RedisMultiplexer.maximumQueued else {
            condition.unlock()
            pending.continuation.resume(
                throwing: RedisError(
                    code: .poolExhausted,
                    message: "redis connection overloaded: \(RedisMultiplexer.maximumQueued) commands already wait for it"))
            return
        }
        // The thread waits only while the queue is empty, so only the first command needs to wake it.
        let wakes = queue.isEmpty
        queue.append(pending)
        queuedCommands += pending.commands.count
        if wakes { condition.signal() }
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        let abandoned = queue
        queue.removeAll()
        queuedCommands = 0
        condition.signal()
        condition.unlock()
        for pending in abandoned {
            pending.continuation.resume(throwing: RedisError(code: .poolExhausted, message: "the redis client is closed"))
        }
    }

    private func run() {
        var batch: [Pending] = []
        var commands: [[RedisArgument]] = []
        var replies: [RedisReply] = []
        while true {
            condition.lock()
            while queue.isEmpty && !closed {
                condition.wait()
            }
            if closed {
                condition.unlock()
                connection.close()
                return
            }
            var taken = 0
            var count = 0
            for pending in queue {
                if count > 0 && count + pending.commands.count > RedisMultiplexer.batchLimit { break }
                count += pending.commands.count
                taken += 1
            }
            batch.append(contentsOf: queue.prefix(taken))
            queue.removeFirst(taken)
            queuedCommands -= count
            condition.unlock()

            for pending in batch { commands.append(contentsOf: pending.commands) }
            let failure: RedisError?
            do {
                try connection.exchange(commands, into: &replies)
                failure = nil
            } catch {
                failure = error
            }
            counts.withLock {
                $0.commands += commands.count
                $0.roundTrips += 1
            }
            var offset = 0
            for pending in batch {
                let end = offset + pending.commands.count
                if end <= replies.count {
                    pending.continuation.resume(returning: Array(replies[offset..<end]))
                } else {
                    pending.continuation.resume(
                        throwing: failure ?? RedisError(code: .connectionLost, message: "the connection ended before the reply"))
                }
                offset = end
            }
            batch.removeAll(keepingCapacity: true)
            commands.removeAll(keepingCapacity: true)
            replies.removeAll(keepingCapacity: true)
        }
    }
}
