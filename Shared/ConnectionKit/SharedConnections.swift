import Foundation
import Synchronization

/// A blocking client connection whose commands can be pipelined: sent together, answered in order.
/// Not `Sendable`: ``SharedConnections`` keeps each on one thread of its own.
package protocol PipelinedConnection: AnyObject, SendableMetatype {
    associatedtype Command: Sendable
    associatedtype Reply: Sendable

    /// Sends `commands` in one round trip and appends each reply to `replies` as it is read. Throws when
    /// the connection broke midway; the replies read until then are kept. The next call reconnects.
    func exchange(_ commands: [Command], into replies: inout [Reply]) throws
    func close()

    /// What a command gets once its client is closed.
    static func closedError() -> any Error
    /// What a command gets when `limit` commands already wait for its connection.
    static func overloadedError(limit: Int) -> any Error
    /// What a command gets when its connection broke before its reply (its outcome is unknown).
    static func lostError() -> any Error
}

/// Commands from many callers sharing a few connections: pipelining across callers.
///
/// Each lane owns one connection and one OS thread, so blocking C clients still never run on Swift's
/// cooperative pool. The thread sleeps until commands are queued, then takes every command queued
/// since its last round trip (up to `batchLimit`), sends them in one go, reads the replies in order
/// and resumes each caller with its own. Under load one round trip carries many callers' commands:
/// one wake-up, one write and a few reads, instead of a pool lease, a thread hop, a write and a read
/// per command. One caller at a time costs what a leased connection costs.
///
/// A caller goes to the lane with the fewest commands queued or in flight, so a lane held up by a
/// slow command gets no new ones while another is free. Only commands that neither block their
/// connection nor depend on its session state may share one: the clients decide which.
///
/// A connection that breaks fails the commands of its round trip whose replies were not read with
/// ``PipelinedConnection/lostError()`` and reconnects for the next round trip, as a pooled connection
/// does. ``close()`` fails every queued command and every later one.
package final class SharedConnections<Connection: PipelinedConnection>: Sendable {
    private let lanes: [Lane<Connection>]

    /// - Parameters:
    ///   - count: the lanes (connections and threads), at least one.
    ///   - batchLimit: the most commands one round trip carries (a caller's commands always go whole).
    ///   - maximumQueued: the most commands one lane holds waiting; beyond, callers fail at once.
    ///   - makeConnection: creates lane `index`'s connection; it must not do I/O (connecting happens on
    ///     the lane's thread at first use).
    package init(
        count: Int, name: String, batchLimit: Int = 256, maximumQueued: Int = 10_000, makeConnection: (Int) -> Connection
    ) {
        lanes = (0..<max(1, count)).map { index in
            Lane(connection: makeConnection(index), name: "\(name)-\(index)", batchLimit: batchLimit, maximumQueued: maximumQueued)
        }
    }

    deinit {
        close()
    }

    /// Sends `commands` together, in order and with no other caller's command in between, in the least
    /// busy lane's next round trip; returns their replies.
    package func exchange(_ commands: [Connection.Command]) async throws -> [Connection.Reply] {
        guard !commands.isEmpty else { return [] }
        var lane = lanes[0]
        if lanes.count > 1 {
            var least = lane.load.load(ordering: .relaxed)
            for candidate in lanes.dropFirst() where least > 0 {
                let load = candidate.load.load(ordering: .relaxed)
                if load < least {
                    least = load
                    lane = candidate
                }
            }
        }
        return try await withCheckedThrowingContinuation { continuation in
            lane.submit(commands, continuation)
        }
    }

    /// How many commands and round trips the lanes have made so far (for tests and diagnostics).
    package var statistics: (commands: Int, roundTrips: Int) {
        lanes.reduce((0, 0)) { total, lane in
            let counts = lane.counts.withLock { $0 }
            return (total.0 + counts.commands, total.1 + counts.roundTrips)
        }
    }

    /// Fails every queued and later command; each lane's thread finishes its round trip, closes its
    /// connection and exits.
    package func close() {
        for lane in lanes { lane.close() }
    }
}

/// One connection and its thread.
private final class Lane<Connection: PipelinedConnection>: @unchecked Sendable {
    typealias Continuation = CheckedContinuation<[Connection.Reply], any Error>

    private struct Pending {
        let commands: [Connection.Command]
        let continuation: Continuation
    }

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var queuedCommands = 0
    private var closed = false
    /// Touched only by the lane's thread (and by `deinit`, after the thread let go of the lane).
    private let connection: Connection
    private let batchLimit: Int
    private let maximumQueued: Int
    /// Commands queued or in flight (read without the lock to pick a lane).
    let load = Atomic<Int>(0)
    let counts = Mutex<(commands: Int, roundTrips: Int)>((0, 0))

    init(connection: Connection, name: String, batchLimit: Int, maximumQueued: Int) {
        self.connection = connection
        self.batchLimit = max(1, batchLimit)
        self.maximumQueued = maximumQueued
        let thread = Thread { [self] in
            ThreadName.setCurrent(name)
            self.run()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    func submit(_ commands: [Connection.Command], _ continuation: Continuation) {
        condition.lock()
        guard !closed else {
            condition.unlock()
            continuation.resume(throwing: Connection.closedError())
            return
        }
        guard queuedCommands + commands.count <= maximumQueued else {
            condition.unlock()
            continuation.resume(throwing: Connection.overloadedError(limit: maximumQueued))
            return
        }
        // The thread waits only while the queue is empty, so only the first command needs to wake it.
        let wakes = queue.isEmpty
        queue.append(Pending(commands: commands, continuation: continuation))
        queuedCommands += commands.count
        load.add(commands.count, ordering: .relaxed)
        if wakes { condition.signal() }
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        let abandoned = queue
        queue.removeAll()
        load.subtract(queuedCommands, ordering: .relaxed)
        queuedCommands = 0
        condition.signal()
        condition.unlock()
        for pending in abandoned {
            pending.continuation.resume(throwing: Connection.closedError())
        }
    }

    private func run() {
        var batch: [Pending] = []
        var commands: [Connection.Command] = []
        var replies: [Connection.Reply] = []
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
                if count > 0 && count + pending.commands.count > batchLimit { break }
                count += pending.commands.count
                taken += 1
            }
            batch.append(contentsOf: queue.prefix(taken))
            queue.removeFirst(taken)
            queuedCommands -= count
            condition.unlock()

            for pending in batch { commands.append(contentsOf: pending.commands) }
            var failure: (any Error)?
            do {
                try connection.exchange(commands, into: &replies)
            } catch {
                failure = error
            }
            counts.withLock {
                $0.commands += commands.count
                $0.roundTrips += 1
            }
            load.subtract(count, ordering: .relaxed)
            var offset = 0
            for pending in batch {
                let end = offset + pending.commands.count
                if end <= replies.count {
                    pending.continuation.resume(returning: Array(replies[offset..<end]))
                } else {
                    pending.continuation.resume(throwing: failure ?? Connection.lostError())
                }
                offset = end
            }
            batch.removeAll(keepingCapacity: true)
            commands.removeAll(keepingCapacity: true)
            replies.removeAll(keepingCapacity: true)
        }
    }
}
