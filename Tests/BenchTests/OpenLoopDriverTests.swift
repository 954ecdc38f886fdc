import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

@testable import Bench

/// The open loop's driver against small local HTTP servers: what it records must be the latency
/// from each arrival's due time, so that a slow service shows up in full (coordinated omission
/// corrected), and only the measured window counts.
@Suite("Open-loop driver")
struct OpenLoopDriverTests {
    @Test("a service slower than the arrival rate: the queueing counts, not just the service time")
    func queueingIsMeasured() async throws {
        try await withServer(delay: .milliseconds(20)) { port in
            // 200 arrivals at 200/s, one at a time, each answered after 20 ms: the service manages
            // 50/s, so the last arrival waits about 200 x 20 ms - 200 x 5 ms = 3 s behind its due time.
            let schedule = OpenLoopSchedule(rate: 200, warmup: .zero, seconds: .seconds(1), maxInFlight: 1)
            let run = try await drive(schedule, ports: [port]) { _ in Probe(target: 0) }
            let record = run.record
            #expect(record.completed == 200)
            #expect(record.failures == 0)
            let latencyP99 = OpenLoopReport.ms(record.latency, 99)
            let serviceP99 = OpenLoopReport.ms(record.service, 99)
            // A closed loop would report the 20 ms; the open loop reports the wait as well.
            #expect(latencyP99 > 2_000, "p99 from due time \(latencyP99) ms")
            #expect(serviceP99 < 1_000, "p99 from sending \(serviceP99) ms")
            #expect(record.lateStarts >= 150)
            #expect(run.finished - run.end > .seconds(2))
        }
    }

    @Test("arrivals of the warm-up run but are not recorded; failures, conflicts and exhaustion are counted apart")
    func windowAndOutcomes() async throws {
        try await withServer(delay: .zero) { port in
            let schedule = OpenLoopSchedule(rate: 100, warmup: .milliseconds(500), seconds: .seconds(1), maxInFlight: 64)
            #expect(schedule.arrivals == 150)
            let seen = Mutex<[Int]>([])
            let run = try await drive(schedule, ports: [port]) { sequence in
                seen.withLock { $0.append(sequence) }
                switch sequence % 10 {
                case 0: return Probe(target: 0, outcome: .failed("refused \(sequence)"))
                case 1: return Probe(target: 0, outcome: .conflict)
                case 2: return nil
                default: return Probe(target: 0)
                }
            }
            let record = run.record
            // Every arrival started once, in due order.
            #expect(seen.withLock { $0 } == Array(0..<150))
            // The window holds arrivals 50..<150: 10 of each kind, 70 completed.
            #expect(record.completed == 70)
            #expect(record.failures == 10)
            #expect(record.conflicts == 10)
            #expect(record.exhausted == 10)
            #expect(record.failuresInWarmup == 5)
            #expect(record.servedHolds == 135)
            #expect(record.latency.totalCount == 70)
            #expect(record.messages.count == 5)
        }
    }

    @Test("at a rate the services keep up with, latency is theirs; an exchange moves between targets")
    func unloadedTwoTargets() async throws {
        try await withServer(delay: .milliseconds(5)) { first in
            try await withServer(delay: .milliseconds(5)) { second in
                let schedule = OpenLoopSchedule(rate: 100, warmup: .zero, seconds: .seconds(2), maxInFlight: 64)
                let run = try await drive(schedule, ports: [first, second]) { _ in Probe(target: 1, then: 0) }
                #expect(run.record.completed == 200)
                // Generous: the test machine may be busy (on a slow one, running the other suites, a
                // 1 s run measured p50 262 ms). Latency counted from the run's start instead of each
                // arrival's due time would make the p50 about 1 s, a driver that queues more still.
                #expect(OpenLoopReport.ms(run.record.latency, 50) < 500)
                #expect(run.record.steps.count == 2)
                #expect(run.record.steps.map(\.totalCount) == [200, 200])
                let report = OpenLoopReport(
                    scenario: "saga", label: "0.5", rate: 100, seconds: 2, warmup: 0, maxInFlight: 64, windowStart: 0, windowEnd: 2,
                    lastAnswerAfterEnd: 0, driverCPUSeconds: 0.1, primedEvents: 0, cores: 2, record: run.record)
                let json = report.json()
                #expect(json["completed"] as? Int == 200)
                #expect((json["latency_ms"] as? [String: Any])?["count"] as? Int == 200)
                #expect(report.text().contains("open_loop_throughput=100 "))
                // Every success is on the timeline; about 1% of them are above the p99.
                #expect(run.record.timeline.count == 200)
                #expect(report.tailAboveP99.count <= 2)
                #expect((json["tail_above_p99"] as? [String: Any])?["count"] as? Int == report.tailAboveP99.count)
            }
        }
    }

    @Test("the answers above a latency, by when they were due: a stall's few windows against a spread tail")
    func tailByDueTime() {
        var record = OpenLoopRecord()
        // 1,000 answers due 1 ms apart at 1 ms; a stall between 300 and 349 ms (50 answers at 90 ms,
        // waiting in their second step), and 5 slow answers spread at 0, 200, 400, 600 and 800 ms (40 ms,
        // in their first).
        record.timeline = (0..<1_000).map { due in
            if (300..<350).contains(due) { return (dueMillis: due, latency: 90_000, steps: [1_000, 89_000]) }
            if due % 200 == 0 { return (dueMillis: due, latency: 40_000, steps: [39_500, 500]) }
            return (dueMillis: due, latency: 1_000, steps: [500, 500])
        }
        let stall = record.tail(above: 50_000)
        #expect(stall.count == 50)
        #expect(stall.windows == 1)
        #expect(stall.busiest.map(\.startMillis) == [300])
        #expect(stall.stepMedians == [1_000, 89_000])
        #expect(stall.text(stepNames: ["hold", "book"]) == "count=50 windows_100ms=1 busiest=0.3s:50 hold_p50=1.00 book_p50=89.00")
        let all = record.tail(above: 10_000, busiest: 3)
        #expect(all.count == 55)
        #expect(all.windows == 6)
        // Most first, then earliest: the stall's window, then the spread ones in time order.
        #expect(all.busiest.map(\.startMillis) == [300, 0, 200])
        #expect(all.busiest.map(\.count) == [50, 1, 1])
        #expect(all.stepMedians == [1_000, 89_000])
        #expect(record.tail(above: 100_000).text(stepNames: ["hold", "book"]) == "count=0 windows_100ms=0 busiest=-")
    }

    @Test("a service that does not answer: each request fails after the timeout, and the run ends")
    func timeout() async throws {
        try await withServer(delay: .seconds(5)) { port in
            let schedule = OpenLoopSchedule(rate: 10, warmup: .zero, seconds: .milliseconds(500), maxInFlight: 8)
            let started = ContinuousClock.now
            let run = try await LoopDriver.run(
                targets: [("127.0.0.1", port)], schedule: schedule, requestTimeout: .milliseconds(300)
            ) { _ in Probe(target: 0) }
            #expect(run.record.completed == 0)
            #expect(run.record.failures == 5)
            #expect(run.record.messages.first == "no answer within 300 ms")
            // Generous: well before the server's 5 s.
            #expect(ContinuousClock.now - started < .seconds(4))
        }
    }

    @Test("a service that refuses connections: every arrival fails, and the run ends")
    func refused() async throws {
        try await withRefusingPort { port in
            let schedule = OpenLoopSchedule(rate: 50, warmup: .zero, seconds: .seconds(1), maxInFlight: 8)
            let run = try await drive(schedule, ports: [port]) { _ in Probe(target: 0) }
            #expect(run.record.completed == 0)
            #expect(run.record.failures == 50)
            #expect(run.record.messages.first?.contains("connect to 127.0.0.1") == true, "\(run.record.messages)")
        }
    }
}

/// An exchange of one or two requests (to `target`, then `then`), ending with `outcome`.
private final class Probe: LoopDriver.Exchange {
    private let target: Int
    private var then: Int?
    private let outcome: Arrival.Result.Outcome
    private(set) var created = (holds: 1, bookings: 0, webhooks: 0)

    init(target: Int, then: Int? = nil, outcome: Arrival.Result.Outcome = .ok) {
        self.target = target
        self.then = then
        self.outcome = outcome
    }

    func first() -> LoopDriver.Request { request(target) }

    func next(status: Int, body: ByteBuffer) -> LoopDriver.Next {
        guard status == 200, String(buffer: body) == "ok" else { return .done(.failed("answered \(status)")) }
        if let then {
            self.then = nil
            return .send(request(then))
        }
        return .done(outcome)
    }

    private func request(_ target: Int) -> LoopDriver.Request {
        LoopDriver.Request(target: target, method: .POST, path: "/probe", headers: [("Content-Type", "text/plain")], body: Array("ping".utf8))
    }
}

private func drive(
    _ schedule: OpenLoopSchedule, ports: [Int], _ makeExchange: @escaping @Sendable (Int) -> (any LoopDriver.Exchange)?
) async throws -> OpenLoopSchedule.Run {
    try await LoopDriver.run(targets: ports.map { ("127.0.0.1", $0) }, schedule: schedule, makeExchange: makeExchange)
}

/// Runs `body` with a local HTTP/1.1 server on a free port that answers every request with 200 `ok`
/// after `delay`.
/// Runs `body` with a port whose connections are refused, reserved for the duration: a socket bound to
/// it that never listens. (A port that was merely free a moment ago may be taken meanwhile by another
/// suite's server.)
private func withRefusingPort<T>(_ body: (Int) async throws -> T) async throws -> T {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw RefusingPortError(step: "socket", code: errno) }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
    guard bound == 0 else { throw RefusingPortError(step: "bind", code: errno) }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
    }
    guard named == 0 else { throw RefusingPortError(step: "getsockname", code: errno) }
    return try await body(Int(UInt16(bigEndian: address.sin_port)))
}

private struct RefusingPortError: Error {
    let step: String
    let code: Int32
}

private func withServer<T>(delay: Duration, _ body: (Int) async throws -> T) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let nanoseconds = Int64(delay / .nanoseconds(1))
    let channel = try await ServerBootstrap(group: group)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(DelayedOK(delay: .nanoseconds(nanoseconds)))
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 0
    let outcome: Result<T, any Error>
    do {
        outcome = .success(try await body(port))
    } catch {
        outcome = .failure(error)
    }
    try await channel.close()
    try await group.shutdownGracefully()
    return try outcome.get()
}

private final class DelayedOK: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let delay: TimeAmount

    init(delay: TimeAmount) { self.delay = delay }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let context = NIOLoopBound(context, eventLoop: context.eventLoop)
        let answer: @Sendable () -> Void = {
            var head = HTTPResponseHead(version: .http1_1, status: .ok)
            head.headers.add(name: "Content-Length", value: "2")
            context.value.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
            context.value.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "ok")))), promise: nil)
            context.value.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
        }
        if delay == .zero {
            answer()
        } else {
            context.value.eventLoop.scheduleTask(in: delay) { answer() }
        }
    }
}
