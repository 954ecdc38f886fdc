import Metrics
import SharedModel
import Synchronization

/// A bounded pool of long-lived connection objects.
///
/// The pool hands out an *idle* connection (never one another caller is using), creates connections
/// lazily up to `maximumConnections`, and queues callers when all are busy. A queued caller waits at
/// most `maximumWait`; then it fails with ``ConnectionPoolExhausted`` instead of hanging. Waiters are
/// served first come, first served. Connections are expected to heal themselves (reconnect on next
/// use), so the pool never has to discard one.
package final class ConnectionPool<Connection: AnyObject & Sendable>: Sendable {
    /// How large the pool is and how long a caller may wait for a connection.
    package struct Configuration: Sendable {
        package var maximumConnections: Int
        package var maximumWait: Duration
        /// A label for metrics and errors, e.g. `postgres` or `redis`.
        package var name: String

        package init(maximumConnections: Int, maximumWait: Duration, name: String) {
            self.maximumConnections = max(1, maximumConnections)
            self.maximumWait = maximumWait
            self.name = name
        }
    }

    private enum Immediate {
        case connection(Connection)
        case mustWait
        case closed
    }

    /// What the enqueue of a waiter decided, under the lock.
    private enum Enqueue {
        case queued
        case connection(Connection)
        case failed(any Error)
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Connection, any Error>
        let enqueuedAt: ContinuousClock.Instant
    }

    private struct State: ~Copyable {
        var idle: [Connection] = []
        var all: [Connection] = []
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    package let configuration: Configuration
    private let makeConnection: @Sendable (Int) -> Connection
    private let state = Mutex(State())
    private let metrics: PoolMetrics

    /// - Parameter makeConnection: creates the connection object with the given index. It must not do
    ///   I/O: connecting happens on the connection's own thread at first use.
    package init(configuration: Configuration, makeConnection: @escaping @Sendable (Int) -> Connection) {
        self.configuration = configuration
        self.makeConnection = makeConnection
        self.metrics = PoolMetrics(pool: configuration.name)
    }

    /// Runs `body` with a connection leased for its duration.
    package func withConnection<T>(_ body: (Connection) async throws -> T) async throws -> T {
        let connection = try await lease()
        defer { release(connection) }
        return try await body(connection)
    }

    /// Every connection the pool has created so far (for shutdown and health checks).
    package var connections: [Connection] {
        state.withLock { $0.all }
    }

    /// How many connections are idle, how many callers wait and how many connections exist, read in
    /// one critical section. The pool keeps `idle == 0 || waiting == 0` at all times: no caller waits
    /// while a connection is idle.
    package var occupancy: (idle: Int, waiting: Int, created: Int) {
        state.withLock { ($0.idle.count, $0.waiters.count, $0.all.count) }
    }

    /// Leases an idle connection, creating one when below the limit, or waits for one.
    package func lease() async throws -> Connection {
        let immediate: Immediate = state.withLock { state in
            if state.closed { return .closed }
            if let connection = takeAvailable(&state) { return .connection(connection) }
            return .mustWait
        }
        switch immediate {
        case .connection(let connection):
            metrics.leased()
            return connection
        case .closed:
            throw ConnectionPoolExhausted(pool: configuration.name, reason: .closed)
        case .mustWait:
            return try await waitForConnection()
        }
    }

    /// An idle connection, or a new one while below the limit; nil when every connection is busy.
    /// Called with the lock held.
    private func takeAvailable(_ state: inout State) -> Connection? {
        if let connection = state.idle.popLast() { return connection }
        guard state.all.count < configuration.maximumConnections else { return nil }
        let connection = makeConnection(state.all.count)
        state.all.append(connection)
        return connection
    }

    /// Returns a connection to the pool, handing it straight to the longest waiter if there is one.
    package func release(_ connection: Connection) {
        let waiter: Waiter? = state.withLock { state in
            if !state.waiters.isEmpty {
                return state.waiters.removeFirst()
            }
            state.idle.append(connection)
            return nil
        }
        if let waiter {
            metrics.waited(ContinuousClock.now - waiter.enqueuedAt)
            waiter.continuation.resume(returning: connection)
        } else {
            metrics.released()
        }
    }

    /// Fails every waiter and refuses new leases. Returns every connection created, for closing.
    package func close() -> [Connection] {
        let (waiters, all) = state.withLock { state in
            state.closed = true
            let waiters = state.waiters
            state.waiters.removeAll()
            return (waiters, state.all)
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: ConnectionPoolExhausted(pool: configuration.name, reason: .closed))
        }
        return all
    }

    /// Queues the caller until a connection is released to it, the wait's deadline passes, the task is
    /// cancelled or the pool closes.
    ///
    /// Between `lease()` deciding to wait and the enqueue below, another thread may release a
    /// connection and, finding no waiter, park it as idle. So the enqueue decides again, in the same
    /// critical section that appends the waiter: it takes an idle connection (or creates one) when
    /// there is one, and only otherwise waits. Likewise the timeout and the cancellation may fire
    /// before the waiter is queued, when they find nothing to fail: the enqueue checks the deadline
    /// and the task's cancellation itself.
    private func waitForConnection() async throws -> Connection {
        let id = state.withLock { state in
            state.nextWaiterID &+= 1
            return state.nextWaiterID
        }
        let maximumWait = configuration.maximumWait
        let deadline = ContinuousClock.now + maximumWait
        let timeout = Task { [weak self] in
            try await Task.sleep(until: deadline, clock: .continuous)
            self?.failWaiter(id, with: ConnectionPoolExhausted(pool: self?.configuration.name ?? "", reason: .timedOut(maximumWait)))
        }
        defer { timeout.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Connection, any Error>) in
                let outcome: Enqueue = state.withLock { state in
                    if state.closed { return .failed(ConnectionPoolExhausted(pool: configuration.name, reason: .closed)) }
                    if Task.isCancelled { return .failed(CancellationError()) }
                    if let connection = takeAvailable(&state) { return .connection(connection) }
                    if ContinuousClock.now >= deadline {
                        return .failed(ConnectionPoolExhausted(pool: configuration.name, reason: .timedOut(maximumWait)))
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation, enqueuedAt: .now))
                    return .queued
                }
                switch outcome {
                case .queued:
                    break
                case .connection(let connection):
                    metrics.leased()
                    continuation.resume(returning: connection)
                case .failed(let error):
                    if error is ConnectionPoolExhausted { metrics.exhausted() }
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            failWaiter(id, with: CancellationError())
        }
    }

    private func failWaiter(_ id: UInt64, with error: any Error) {
        let waiter: Waiter? = state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        guard let waiter else { return }
        if error is ConnectionPoolExhausted { metrics.exhausted() }
        waiter.continuation.resume(throwing: error)
    }
}

/// No connection became free within the pool's bounded wait, or the pool is closed.
package struct ConnectionPoolExhausted: Error, Sendable, CustomStringConvertible {
    package enum Reason: Sendable, Equatable {
        case timedOut(Duration)
        case closed
    }
    package let pool: String
    package let reason: Reason

    package var description: String {
        switch reason {
        case .timedOut(let wait): "\(pool) pool exhausted: no connection became free within \(wait)"
        case .closed: "\(pool) pool is closed"
        }
    }
}

/// The pool's metrics: connections in use, waits and their duration, exhausted leases.
final class PoolMetrics: Sendable {
    private let inUse: Meter
    private let waits: Counter
    private let waitDuration: Metrics.Timer
    private let exhaustions: Counter
    private let inUseCount = Atomic<Int>(0)

    init(pool: String) {
        let dimensions = [("pool", pool)]
        inUse = Meter(label: "pool_connections_in_use", dimensions: dimensions)
        waits = Counter(label: "pool_waits_total", dimensions: dimensions)
        waitDuration = Metrics.Timer(label: "pool_wait_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        exhaustions = Counter(label: "pool_exhausted_total", dimensions: dimensions)
    }

    func leased() {
        inUse.set(inUseCount.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    func released() {
        inUse.set(inUseCount.wrappingSubtract(1, ordering: .relaxed).newValue)
    }

    /// A waiter received a connection that was already counted as in use.
    func waited(_ duration: Duration) {
        waits.increment()
        waitDuration.recordNanoseconds(duration.wholeNanoseconds)
    }

    func exhausted() {
        exhaustions.increment()
    }
}
