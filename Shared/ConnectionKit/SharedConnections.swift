import Foundation
import Synchronization

/// A blocking client connection whose commands can be pipelined: sent together, answered in order.
/// Not `Sendable`: ``SharedConnections`` keeps each on one thread of its own.
public protocol PipelinedConnection: AnyObject, SendableMetatype {
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
public final class SharedConnections<Connection: PipelinedConnection>: Sendable {
    @usableFromInline let lanes: [Lane<Connection>]

    /// - Parameters:
    ///   - count: the lanes (connections and threads), at least one.
    ///   - batchLimit: the most commands one round trip carries (a caller's commands always go whole).
    ///   - maximumQueued: the most commands one lane holds waiting; beyond, callers fail at once.
    ///   - makeConnection: creates lane `index`'s connection; it must not do I/O (connecting happens on
    ///     the lane's thread at first use).
    @inlinable
    public init(
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
    @inlinable
    public func exchange(_ commands: [Connection.Command]) async throws -> [Connection.Reply] {
        guard !commands.isEmpty else { return [] }
        let lane = leastBusyLane()
        return try await withUnsafeThrowingContinuation { continuation in
            lane.submit(Lane.Pending(commands: commands, resumption: .replies(continuation)))
        }
    }

    /// The replies of commands sent with ``exchange(_:then:)``, and of the follow-up they asked for.
    public struct Followed: Sendable {
        public let first: [Connection.Reply]
        /// nil when the follow-up was not asked for; else its replies, or why they are missing: its
        /// connection broke (``PipelinedConnection/lostError()``: outcome unknown) or the client closed.
        public let then: Result<[Connection.Reply], any Error>?

        @usableFromInline
        init(first: [Connection.Reply], then: Result<[Connection.Reply], any Error>?) {
            self.first = first
            self.then = then
        }
    }

    /// Sends `commands` as ``exchange(_:)`` does, then gives their replies to `followUp` on the lane's
    /// thread and sends the commands it returns (nil or none: nothing) first in the lane's next round
    /// trip, without resuming the caller in between: one hand-off to and from the caller instead of two,
    /// for a step that must see the outcome of the one before (e.g. in another Redis hash slot).
    /// `followUp` runs between round trips on the lane's thread, so it must be quick and never block.
    /// Throws only when `commands` got no replies; a follow-up's failure is in ``Followed/then``.
    @inlinable
    public func exchange(
        _ commands: [Connection.Command], then followUp: @escaping @Sendable ([Connection.Reply]) -> [Connection.Command]?
    ) async throws -> Followed {
        guard !commands.isEmpty else { return Followed(first: [], then: nil) }
        let lane = leastBusyLane()
        return try await withUnsafeThrowingContinuation { continuation in
            lane.submit(Lane.Pending(commands: commands, resumption: .followed(continuation, followUp)))
        }
    }

    @inlinable
    func leastBusyLane() -> Lane<Connection> {
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
        return lane
    }

    /// Commands queued or in flight on all lanes now (for tests and diagnostics).
    public var load: Int {
        lanes.reduce(0) { $0 + $1.load.load(ordering: .relaxed) }
    }

    /// How many commands and round trips the lanes have made so far (for tests and diagnostics).
    public var statistics: (commands: Int, roundTrips: Int) {
        lanes.reduce((0, 0)) { total, lane in
            let counts = lane.counts.withLock { $0 }
            return (total.0 + counts.commands, total.1 + counts.roundTrips)
        }
    }

    /// Fails every queued and later command; each lane's thread finishes its round trip, closes its
    /// connection and exits.
    public func close() {
        for lane in lanes { lane.close() }
    }
}

/// One connection and its thread.
///
/// `@usableFromInline` with `@inlinable` methods (and ``SharedConnections`` public), so that each
/// client module (Redis, Postgres) compiles the lane specialized for its connection. Generic across
/// the module boundary, every array operation of the loop looked its element type up at run time.
/// Under the holds pair the lane, the one thread every shared command goes through, was 7.0% of the
/// booking service's CPU generic and is 4.1% specialized (docs/performance.md, "Holds").
@usableFromInline
final class Lane<Connection: PipelinedConnection>: @unchecked Sendable {
    @usableFromInline typealias Followed = SharedConnections<Connection>.Followed
    @usableFromInline typealias FollowUp = @Sendable ([Connection.Reply]) -> [Connection.Command]?

    /// Whom a round trip's replies go to. Every caller's resumption is resumed exactly once: by
    /// `submit` or `enqueueFirst` when the lane refuses it, by `close` when it is abandoned in the
    /// queue, or by `run` when its round trip ends (a `.followed` becomes a `.followUp`, resumed in
    /// turn). So the continuations are unsafe ones, without the checked ones' allocation and atomic
    /// flag per call. The tests drive every path, closing and broken connections included
    /// (`SharedConnectionsFollowUpTests`, `RedisSharedConnectionTests`, `PostgresSharedQueryTests`,
    /// the restart suites).
    @usableFromInline
    enum Resumption {
        /// A caller of ``SharedConnections/exchange(_:)``.
        case replies(UnsafeContinuation<[Connection.Reply], any Error>)
        /// The first step of ``SharedConnections/exchange(_:then:)``: its replies go to the follow-up.
        case followed(UnsafeContinuation<Followed, any Error>, FollowUp)
        /// The follow-up's commands, sent after the first step's replies `first`.
        case followUp(UnsafeContinuation<Followed, any Error>, first: [Connection.Reply])

        @inlinable
        func fail(_ error: any Error) {
            switch self {
            case .replies(let continuation): continuation.resume(throwing: error)
            case .followed(let continuation, _): continuation.resume(throwing: error)
            case .followUp(let continuation, let first): continuation.resume(returning: Followed(first: first, then: .failure(error)))
            }
        }
    }

    @usableFromInline
    struct Pending {
        @usableFromInline let commands: [Connection.Command]
        @usableFromInline let resumption: Resumption

        @inlinable
        init(commands: [Connection.Command], resumption: Resumption) {
            self.commands = commands
            self.resumption = resumption
        }
    }

    // Guarded by `condition`.
    @usableFromInline let condition = NSCondition()
    @usableFromInline var queue: [Pending] = []
    @usableFromInline var queuedCommands = 0
    @usableFromInline var closed = false
    /// Touched only by the lane's thread (and by `deinit`, after the thread let go of the lane).
    @usableFromInline let connection: Connection
    @usableFromInline let batchLimit: Int
    @usableFromInline let maximumQueued: Int
    /// Commands queued or in flight (read without the lock to pick a lane).
    @usableFromInline let load = Atomic<Int>(0)
    @usableFromInline let counts = Mutex<(commands: Int, roundTrips: Int)>((0, 0))

    @inlinable
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

    @inlinable
    func submit(_ pending: Pending) {
        condition.lock()
        guard !closed else {
            condition.unlock()
            pending.resumption.fail(Connection.closedError())
            return
        }
        guard queuedCommands + pending.commands.count <= maximumQueued else {
            condition.unlock()
            pending.resumption.fail(Connection.overloadedError(limit: maximumQueued))
            return
        }
        // The thread waits only while the queue is empty, so only the first command needs to wake it.
        let wakes = queue.isEmpty
        queue.append(pending)
        queuedCommands += pending.commands.count
        load.add(pending.commands.count, ordering: .relaxed)
        if wakes { condition.signal() }
        condition.unlock()
    }

    /// Queues follow-ups ahead of everything else (the lane's own thread, between round trips, so
    /// nothing needs waking). They continue calls already admitted, so the queue's limit does not apply.
    @inlinable
    func enqueueFirst(_ followUps: [Pending]) {
        condition.lock()
        guard !closed else {
            condition.unlock()
            for pending in followUps { pending.resumption.fail(Connection.closedError()) }
            return
        }
        let count = followUps.reduce(0) { $0 + $1.commands.count }
        queue.insert(contentsOf: followUps, at: 0)
        queuedCommands += count
        load.add(count, ordering: .relaxed)
        condition.unlock()
    }

    @inlinable
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
            pending.resumption.fail(Connection.closedError())
        }
    }

    @inlinable
    func run() {
        var batch: [Pending] = []
        var commands: [Connection.Command] = []
        var replies: [Connection.Reply] = []
        var followUps: [Pending] = []
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
                guard end <= replies.count else {
                    pending.resumption.fail(failure ?? Connection.lostError())
                    offset = end
                    continue
                }
                let own = Array(replies[offset..<end])
                offset = end
                switch pending.resumption {
                case .replies(let continuation):
                    continuation.resume(returning: own)
                case .followed(let continuation, let followUp):
                    if let next = followUp(own), !next.isEmpty {
                        followUps.append(Pending(commands: next, resumption: .followUp(continuation, first: own)))
                    } else {
                        continuation.resume(returning: Followed(first: own, then: nil))
                    }
                case .followUp(let continuation, let first):
                    continuation.resume(returning: Followed(first: first, then: .success(own)))
                }
            }
            if !followUps.isEmpty {
                enqueueFirst(followUps)
                followUps.removeAll(keepingCapacity: true)
            }
            batch.removeAll(keepingCapacity: true)
            commands.removeAll(keepingCapacity: true)
            replies.removeAll(keepingCapacity: true)
        }
    }
}
