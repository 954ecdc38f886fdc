import Foundation
import Synchronization
import Testing

@testable import ConnectionKit

/// A scripted connection for the lanes: every command `c` is answered `r:c` and each round trip is
/// logged. `gate` blocks the round trip until the test opens it; `break` breaks the connection before
/// its reply (the replies before it are kept).
final class ScriptedConnection: PipelinedConnection, @unchecked Sendable {
    struct Broken: Error {}
    struct Closed: Error {}
    struct Overloaded: Error {}
    struct Lost: Error {}

    let roundTrips = Shared<[[String]]>([])
    let atGate = DispatchSemaphore(value: 0)
    let gate = DispatchSemaphore(value: 0)

    func exchange(_ commands: [String], into replies: inout [String]) throws {
        roundTrips.withLock { $0.append(commands) }
        for command in commands {
            if command == "break" { throw Broken() }
            if command == "gate" {
                atGate.signal()
                gate.wait()
            }
            replies.append("r:" + command)
        }
    }

    /// Returns once a round trip waits at `gate` (waiting off the cooperative pool).
    func reachedGate() async {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                self.atGate.wait()
                continuation.resume()
            }
        }
    }

    func close() {}
    static func closedError() -> any Error { Closed() }
    static func overloadedError(limit: Int) -> any Error { Overloaded() }
    static func lostError() -> any Error { Lost() }
}

@Suite("Shared connections: follow-ups")
struct SharedConnectionsFollowUpTests {
    private func lane() -> (SharedConnections<ScriptedConnection>, ScriptedConnection) {
        let connection = ScriptedConnection()
        return (SharedConnections(count: 1, name: "follow-up-test") { _ in connection }, connection)
    }

    /// Waits (up to 30 s) until the lane has `count` commands queued or in flight.
    private func waitForLoad(_ shared: SharedConnections<ScriptedConnection>, _ count: Int) async throws {
        for _ in 0..<3_000 where shared.load != count {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(shared.load == count)
    }

    @Test("the follow-up goes first in the lane's next round trip, ahead of commands queued meanwhile, and its caller gets both steps' replies")
    func followUpGoesFirst() async throws {
        let (shared, connection) = lane()
        defer { shared.close() }
        let asked = Shared<[[String]]>([])
        let followed = Task {
            try await shared.exchange(["a1", "gate"]) { replies in
                asked.withLock { $0.append(replies) }
                return ["a2"]
            }
        }
        await connection.reachedGate()
        let other = Task { try await shared.exchange(["b1"]) }
        try await waitForLoad(shared, 3)
        connection.gate.signal()
        let result = try await followed.value
        #expect(try await other.value == ["r:b1"])
        #expect(result.first == ["r:a1", "r:gate"])
        #expect(try result.then?.get() == ["r:a2"])
        #expect(asked.withLock { $0 } == [["r:a1", "r:gate"]])
        #expect(connection.roundTrips.withLock { $0 } == [["a1", "gate"], ["a2", "b1"]])
        #expect(shared.load == 0)
    }

    @Test("a follow-up that asks for nothing sends nothing")
    func noFollowUp() async throws {
        let (shared, connection) = lane()
        defer { shared.close() }
        let result = try await shared.exchange(["a1"]) { _ in nil }
        #expect(result.first == ["r:a1"])
        #expect(result.then == nil)
        let empty = try await shared.exchange(["a2"]) { _ in [] }
        #expect(empty.then == nil)
        #expect(connection.roundTrips.withLock { $0 } == [["a1"], ["a2"]])
    }

    @Test("a connection that breaks before the follow-up's reply keeps the first step's replies and fails only the follow-up")
    func followUpLost() async throws {
        let (shared, _) = lane()
        defer { shared.close() }
        let result = try await shared.exchange(["a1"]) { _ in ["break"] }
        #expect(result.first == ["r:a1"])
        #expect(throws: ScriptedConnection.Broken.self) { try result.then?.get() }
        // The lane goes on with the next round trip.
        #expect(try await shared.exchange(["b1"]) == ["r:b1"])
    }

    @Test("a first step without replies throws, and its follow-up is never asked for")
    func firstStepLost() async throws {
        let (shared, _) = lane()
        defer { shared.close() }
        let asked = Shared(false)
        await #expect(throws: ScriptedConnection.Broken.self) {
            _ = try await shared.exchange(["break"]) { _ in
                asked.withLock { $0 = true }
                return ["a2"]
            }
        }
        #expect(asked.withLock { $0 } == false)
    }

    @Test("a follow-up after the client closed fails with the closed error, and the first step's replies are kept")
    func followUpAfterClose() async throws {
        let (shared, connection) = lane()
        let followed = Task { try await shared.exchange(["gate"]) { _ in ["a2"] } }
        await connection.reachedGate()
        shared.close()
        connection.gate.signal()
        let result = try await followed.value
        #expect(result.first == ["r:gate"])
        #expect(throws: ScriptedConnection.Closed.self) { try result.then?.get() }
        #expect(connection.roundTrips.withLock { $0 } == [["gate"]])
    }
}
