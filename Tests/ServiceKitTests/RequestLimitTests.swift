import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Synchronization
import TestSupport
import Testing

@testable import ServiceKit

/// A gate requests wait at until the test opens it, one request at a time.
private final class Gate: Sendable {
    private let waiting = Mutex<[CheckedContinuation<Void, Never>]>([])
    private let arrivals = Mutex<[String]>([])

    /// Records `name`'s arrival, then waits for ``openOne()``.
    func pass(_ name: String) async {
        await withCheckedContinuation { continuation in
            waiting.withLock { $0.append(continuation) }
            arrivals.withLock { $0.append(name) }
        }
    }

    var arrived: [String] { arrivals.withLock { $0 } }

    /// Lets the longest-waiting request through; false when none waits.
    @discardableResult
    func openOne() -> Bool {
        let next: CheckedContinuation<Void, Never>? = waiting.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        next?.resume()
        return next != nil
    }

    func openAll() {
        while openOne() {}
    }
}

/// Polls `condition` every 5 ms for up to 10 s (tasks starting on a loaded machine take their time).
private func eventually(_ condition: () -> Bool) async throws -> Bool {
    for _ in 0..<2000 {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

@Suite("Admission control: requests in flight, a bounded queue, 503 overloaded beyond it")
struct RequestLimitTests {
    @Test("2 in flight and 2 waiting: a fifth is refused at once; turns pass in arrival order; every turn is given back")
    func inFlightQueueAndRefusal() async throws {
        let limit = RequestLimit(maximum: 2, maximumQueued: 2)
        let gate = Gate()
        try await withThrowingTaskGroup(of: RequestLimit.Admission.self) { group in
            for index in 0..<4 {
                group.addTask {
                    let admission = try await limit.admit()
                    await gate.pass("\(index)")
                    limit.release()
                    return admission
                }
                // One after the other, so the queue's order is known.
                #expect(try await eventually { limit.counts == (min(index + 1, 2), max(index - 1, 0)) })
            }
            #expect(gate.arrived.count == 2)
            #expect(try await limit.admit() == .refused)
            #expect(limit.counts == (2, 2))
            // A request that ends hands its turn to the longest-waiting one.
            gate.openOne()
            #expect(try await eventually { gate.arrived.count == 3 })
            #expect(gate.arrived.last == "2" && limit.counts == (2, 1))
            gate.openOne()
            #expect(try await eventually { gate.arrived.count == 4 })
            #expect(gate.arrived.last == "3" && limit.counts == (2, 0))
            gate.openAll()
            var admissions: [RequestLimit.Admission] = []
            for try await admission in group { admissions.append(admission) }
            #expect(admissions == Array(repeating: .admitted, count: 4))
        }
        #expect(limit.counts == (0, 0))
        // Free again: a turn is taken at once.
        #expect(try await limit.admit() == .admitted)
        limit.release()
    }

    @Test("a waiting request whose task is cancelled leaves the queue without taking a turn")
    func cancelledWhileWaiting() async throws {
        let limit = RequestLimit(maximum: 1, maximumQueued: 4)
        #expect(try await limit.admit() == .admitted)
        let waiter = Task { try await limit.admit() }
        #expect(try await eventually { limit.counts == (1, 1) })
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(limit.counts == (1, 0))
        limit.release()
        #expect(limit.counts == (0, 0))
        #expect(try await limit.admit() == .admitted)
        limit.release()
    }

    @Test("over HTTP: beyond HTTP_MAX_IN_FLIGHT + HTTP_MAX_QUEUED a request gets 503 overloaded with Retry-After; probes and /metrics still answer")
    func middleware() async throws {
        let (app, router) = try makeTestApplication(settings: ["HTTP_MAX_IN_FLIGHT": "1", "HTTP_MAX_QUEUED": "1"])
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        #expect(app.settings.httpMaximumInFlight == 1 && app.settings.httpMaximumQueued == 1)
        let gate = Gate()
        router.post("/slow/:name") { _, context -> HTTPResponse.Status in
            await gate.pass(context.parameters.get("name") ?? "-")
            return .ok
        }
        try await Application(router: router).test(.router) { client in
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                group.addTask { try await client.execute(uri: "/slow/first", method: .post) { $0.status } }
                #expect(try await eventually { gate.arrived == ["first"] })
                // Waits behind the first.
                group.addTask { try await client.execute(uri: "/slow/second", method: .post) { $0.status } }
                try await Task.sleep(for: .milliseconds(100))
                #expect(gate.arrived == ["first"])
                // The queue holds one: refused, before its handler ran.
                let refused = try await client.execute(uri: "/slow/third", method: .post) { response in
                    (response.status, response.headers[.retryAfter], String(buffer: response.body))
                }
                #expect(refused.0 == .serviceUnavailable && refused.1 == "1")
                #expect(refused.2.contains("\"overloaded\""), "\(refused.2)")
                for probe in ["/healthz", "/metrics"] {
                    #expect(try await client.execute(uri: probe, method: .get) { $0.status } == .ok, "\(probe)")
                }
                gate.openOne()
                #expect(try await eventually { gate.arrived == ["first", "second"] })
                gate.openOne()
                var statuses: [HTTPResponse.Status] = []
                for try await status in group { statuses.append(status) }
                #expect(statuses == [.ok, .ok])
            }
            #expect(gate.arrived == ["first", "second"])
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            #expect(metrics.contains("http_requests_shed_total"), "the refusal is counted")
        }
    }

    @Test("a request whose body is still arriving holds no turn: with a single turn, another request is served meanwhile")
    func slowBodyHoldsNoTurn() async throws {
        let (app, router) = try makeTestApplication(settings: ["HTTP_MAX_IN_FLIGHT": "1", "HTTP_MAX_QUEUED": "0"])
        defer {
            Task {
                await app.postgres.shutdown(); await app.redis.shutdown()
            }
        }
        router.post("/slow-body") { request, context -> String in
            String(buffer: try await request.body.collect(upTo: context.maxUploadSize))
        }
        let server = Application(router: router, server: app.httpServer, configuration: app.serverConfiguration)
        try await server.test(.live) { client in
            let port = try #require(client.port)
            let slow = try RawTCPConnection(port: port)
            try await slow.send("POST /slow-body HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nhello")
            try await Task.sleep(for: .milliseconds(200))
            let quick = try await client.execute(uri: "/slow-body", method: .post, body: ByteBuffer(string: "quick")) { response in
                (response.status, String(buffer: response.body))
            }
            #expect(quick.0 == .ok && quick.1 == "quick")
            try await slow.send("world")
            #expect(try await slow.read(until: "helloworld", timeout: .seconds(5)) != nil)
        }
    }
}
