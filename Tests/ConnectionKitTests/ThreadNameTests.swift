import Foundation
import Testing

@testable import ConnectionKit

/// A pipelined connection that answers each command with the name of the thread that sent it.
private final class NameReportingConnection: PipelinedConnection {
    typealias Command = Int
    typealias Reply = String

    func exchange(_ commands: [Int], into replies: inout [String]) throws {
        for _ in commands { replies.append(ThreadName.current()) }
    }
    func close() {}
    static func closedError() -> any Error { CancellationError() }
    static func overloadedError(limit: Int) -> any Error { CancellationError() }
    static func lostError() -> any Error { CancellationError() }
}

@Suite("Thread names")
struct ThreadNameTests {
    @Test("names Linux can hold are kept; longer ones keep their start and their end, in 15 bytes")
    func shortening() {
        #expect(ThreadName.shortened("redis-shared-0") == "redis-shared-0")
        #expect(ThreadName.shortened("postgres-12") == "postgres-12")
        #expect(ThreadName.shortened("booking-consumers-shared-0") == "booking-c~red-0")
        #expect(ThreadName.shortened("booking-shared-0").utf8.count == 15)
        #expect(ThreadName.shortened("redis-reader-café-lane-1").utf8.count == 15)
        #expect(ThreadName.shortened("café").utf8.count == 4)
    }

    @Test("a dedicated executor's thread carries its name")
    func executorThread() async {
        actor Probe {
            let executor = DedicatedThreadExecutor(name: "probe-exec-3")
            nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
            func threadName() -> String { ThreadName.current() }
            deinit { executor.shutdown() }
        }
        #expect(await Probe().threadName() == "probe-exec-3")
    }

    @Test("a shared connection's lane thread carries the lane's name, shortened")
    func laneThread() async throws {
        let lanes = SharedConnections(count: 2, name: "probe-lanes-pool-shared") { _ in NameReportingConnection() }
        defer { lanes.close() }
        let names = try await lanes.exchange([1, 2])
        #expect(names.count == 2)
        #expect(names.allSatisfy { $0.hasPrefix("probe-lan~") && $0.utf8.count == 15 })
        #expect(names.allSatisfy { $0.hasSuffix("red-0") || $0.hasSuffix("red-1") })
    }
}
