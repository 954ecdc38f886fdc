import Synchronization
import Testing

@testable import ConnectionKit

/// A value shared by concurrent test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { storage.withLock { body(&$0) } }
}

/// A stand-in connection: the pool only needs an object identity.
final class FakeConnection: Sendable {
    let index: Int
    init(index: Int) { self.index = index }
}

@Suite("Connection pool")
struct ConnectionPoolTests {
    func makePool(size: Int, wait: Duration = .seconds(5)) -> ConnectionPool<FakeConnection> {
        ConnectionPool(configuration: .init(maximumConnections: size, maximumWait: wait, name: "fake")) { FakeConnection(index: $0) }
    }

    @Test("creates connections lazily up to the limit and never hands one out twice")
    func neverSharesAConnection() async throws {
        let pool = makePool(size: 3)
        let inUse = Shared<Set<Int>>([])
        let maximumInUse = Shared(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await pool.withConnection { connection in
                        let count = inUse.withLock { set in
                            let inserted = set.insert(connection.index).inserted
                            #expect(inserted, "connection \(connection.index) leased twice")
                            return set.count
                        }
                        maximumInUse.withLock { $0 = max($0, count) }
                        await Task.yield()
                        _ = inUse.withLock { $0.remove(connection.index) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(pool.connections.count <= 3)
        #expect(maximumInUse.withLock { $0 } <= 3)
    }

    @Test("waiters are served first come, first served")
    func fifoHandOff() async throws {
        let pool = makePool(size: 1)
        let held = try await pool.lease()
        let order = Shared<[Int]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for waiter in 0..<5 {
                group.addTask {
                    try await pool.withConnection { _ in order.withLock { $0.append(waiter) } }
                }
                // Let each waiter enqueue before the next.
                try await Task.sleep(for: .milliseconds(20))
            }
            pool.release(held)
            try await group.waitForAll()
        }
        #expect(order.withLock { $0 } == [0, 1, 2, 3, 4])
    }

    @Test("a waiter that times out gets the typed exhaustion error")
    func exhaustion() async throws {
        let pool = makePool(size: 1, wait: .milliseconds(30))
        let held = try await pool.lease()
        let started = ContinuousClock.now
        let error = await #expect(throws: ConnectionPoolExhausted.self) { try await pool.lease() }
        #expect(error?.reason == .timedOut(.milliseconds(30)))
        // Bounded: a generous limit for a busy machine, far from "waits forever".
        #expect(ContinuousClock.now - started < .seconds(10))
        pool.release(held)
        // The pool still works after a timeout.
        let again = try await pool.lease()
        pool.release(again)
    }

    @Test("a cancelled waiter leaves the queue and the connection goes to the next one")
    func cancellation() async throws {
        let pool = makePool(size: 1)
        let held = try await pool.lease()
        let cancelled = Task { try await pool.lease() }
        try await Task.sleep(for: .milliseconds(20))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        let next = Task { try await pool.withConnection { $0.index } }
        try await Task.sleep(for: .milliseconds(20))
        pool.release(held)
        #expect(try await next.value == 0)
    }

    @Test("closing fails waiters and refuses new leases")
    func close() async throws {
        let pool = makePool(size: 1)
        let held = try await pool.lease()
        let waiter = Task { try await pool.lease() }
        try await Task.sleep(for: .milliseconds(20))
        #expect(pool.close().count == 1)
        await #expect(throws: ConnectionPoolExhausted.self) { try await waiter.value }
        await #expect(throws: ConnectionPoolExhausted.self) { try await pool.lease() }
        pool.release(held)
    }

    @Test("the dedicated executor runs jobs on its own thread, in order")
    func executorOrder() async throws {
        actor Recorder {
            let executor = DedicatedThreadExecutor(name: "test")
            nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
            var values: [Int] = []
            func append(_ value: Int) { values.append(value) }
            deinit { executor.shutdown() }
        }
        let recorder = Recorder()
        for value in 0..<100 { await recorder.append(value) }
        #expect(await recorder.values == Array(0..<100))
    }
}
