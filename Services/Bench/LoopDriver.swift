import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The open loop's HTTP driver: everything on one event-loop thread, as wrk2 does it. Arrivals are
/// timers on the loop; a due arrival starts unless `maxInFlight` arrivals are outstanding (then it
/// waits in line, its due time unchanged) and runs its exchange: a request, then for each answer the
/// next request or the end. Each request goes out on an idle keep-alive connection to its target
/// (booking or payments-webhook), or on a new one. No Swift task, lock or thread hop per request:
/// on a small machine the driver's CPU is taken from the services', and a load generator several
/// times costlier than wrk would make the services' latency look worse than it is.
///
/// Only the loop's thread touches the driver's state (`@unchecked Sendable` for that reason).
final class LoopDriver: @unchecked Sendable {
    /// An HTTP/1.1 request ready for the wire, for the target (an index into the driver's targets).
    struct Request {
        var target: Int
        var method: HTTPMethod
        var path: String
        var headers: [(String, String)]
        var body: [UInt8]
    }

    /// What an exchange does after an answer.
    enum Next {
        case send(Request)
        case done(Arrival.Result.Outcome)
    }

    /// One arrival's conversation with the services, created when the arrival starts.
    protocol Exchange: AnyObject {
        func first() -> Request
        func next(status: Int, body: ByteBuffer) -> Next
        /// What the services created for the arrival so far (holds, bookings, webhooks).
        var created: (holds: Int, bookings: Int, webhooks: Int) { get }
    }

    private let loop: any EventLoop
    fileprivate let targets: [(host: String, port: Int)]
    /// How long a request may wait for its answer before its connection is closed and it fails.
    fileprivate let requestTimeout: TimeAmount
    private let schedule: OpenLoopSchedule
    private let makeExchange: (Int) -> (any Exchange)?

    private let clock = ContinuousClock()
    private var started = ContinuousClock.now
    private var windowStart = ContinuousClock.now
    private var end = ContinuousClock.now
    private let interval: Duration
    private let arrivals: Int
    private var next = 0
    private var inFlight = 0
    private var finishedCount = 0
    private var idle: [[Connection]]
    private var open: [Connection] = []
    private var waiting: [(sequence: Int, due: ContinuousClock.Instant)] = []
    private var waitingHead = 0
    private var record = OpenLoopRecord()
    private let done: EventLoopPromise<Void>

    /// `makeExchange` gives arrival `i`'s exchange, or nil when there is nothing left to ask for (the
    /// arrival counts as exhausted).
    init(
        group: any EventLoopGroup, targets: [(host: String, port: Int)], schedule: OpenLoopSchedule, requestTimeout: TimeAmount = .seconds(60),
        makeExchange: @escaping (Int) -> (any Exchange)?
    ) {
        self.loop = group.next()
        self.requestTimeout = requestTimeout
        self.targets = targets
        self.schedule = schedule
        self.makeExchange = makeExchange
        self.interval = .seconds(1 / schedule.rate)
        self.arrivals = schedule.arrivals
        self.idle = Array(repeating: [], count: targets.count)
        self.done = loop.makePromise()
    }

    /// Runs `schedule` against `targets` on an event loop of its own (see `init`).
    static func run(
        targets: [(host: String, port: Int)], schedule: OpenLoopSchedule, requestTimeout: TimeAmount = .seconds(60),
        makeExchange: @escaping (Int) -> (any Exchange)?
    ) async throws -> OpenLoopSchedule.Run {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let outcome: Result<OpenLoopSchedule.Run, any Error>
        do {
            let driver = LoopDriver(
                group: group, targets: targets, schedule: schedule, requestTimeout: requestTimeout, makeExchange: makeExchange)
            outcome = .success(try await driver.run())
        } catch {
            outcome = .failure(error)
        }
        try await group.shutdownGracefully()
        return try outcome.get()
    }

    /// Runs every arrival and waits for its last answer.
    func run() async throws -> OpenLoopSchedule.Run {
        let window = try await loop.submit { [self] in
            started = clock.now + .milliseconds(20)
            windowStart = started + schedule.warmup
            end = windowStart + schedule.seconds
            scheduleNext()
            return (windowStart, end)
        }.get()
        let measure = Task { [clock] in
            try await Task.sleep(until: window.0, clock: clock)
            let before = processCPUSeconds()
            try await Task.sleep(until: window.1, clock: clock)
            return processCPUSeconds() - before
        }
        if arrivals > 0 { try await done.futureResult.get() }
        let finished = clock.now
        let cpuSeconds = (try? await measure.value) ?? .nan
        let record = try await loop.submit { [self] in
            for connection in open { connection.channel?.close(promise: nil) }
            return self.record
        }.get()
        return OpenLoopSchedule.Run(record: record, windowStart: window.0, end: window.1, finished: finished, driverCPUSeconds: cpuSeconds)
    }

    // MARK: - On the loop

    private func due(_ sequence: Int) -> ContinuousClock.Instant { started + interval * sequence }

    /// Starts every arrival due by now, then sets a timer for the next one.
    private func scheduleNext() {
        let now = clock.now
        while next < arrivals, due(next) <= now {
            if inFlight < schedule.maxInFlight {
                begin(next, due: due(next))
            } else {
                waiting.append((next, due(next)))
            }
            next += 1
        }
        guard next < arrivals else { return }
        let wait = due(next) - now
        loop.scheduleTask(in: .nanoseconds(max(0, Int64(wait / .nanoseconds(1))))) { [self] in scheduleNext() }
    }

    private func begin(_ sequence: Int, due: ContinuousClock.Instant) {
        inFlight += 1
        guard let exchange = makeExchange(sequence) else {
            finish(Current(sequence: sequence, due: due, sent: clock.now, exchange: nil), outcome: .exhausted)
            return
        }
        send(exchange.first(), for: Current(sequence: sequence, due: due, sent: clock.now, exchange: exchange))
    }

    /// Sends the arrival's request on an idle connection to its target, or a new one.
    private func send(_ request: Request, for current: Current) {
        if let connection = idle[request.target].popLast() {
            connection.send(request, current: current, now: clock.now)
            return
        }
        let connection = Connection(driver: self, target: request.target)
        connection.pending = (request, current)
        open.append(connection)
        let target = targets[request.target]
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
            .connect(host: target.host, port: target.port)
            .whenComplete { [self] result in
                guard let (request, current) = connection.pending else { return }
                connection.pending = nil
                switch result {
                case .success(let channel):
                    connection.channel = channel
                    connection.send(request, current: current, now: clock.now)
                case .failure(let error):
                    open.removeAll { $0 === connection }
                    finish(current, outcome: .failed("connect to \(target.host):\(target.port): \(error)"))
                }
            }
    }

    /// An answer on `connection`: the connection is free again; the exchange sends its next request
    /// or the arrival ends.
    fileprivate func answered(_ connection: Connection, status: Int, body: ByteBuffer) {
        guard var current = connection.current else { return }
        connection.current = nil
        current.steps.append(clock.now - connection.stepStart)
        idle[connection.target].append(connection)
        guard let exchange = current.exchange else { return }
        switch exchange.next(status: status, body: body) {
        case .send(let request): send(request, for: current)
        case .done(let outcome): finish(current, outcome: outcome)
        }
    }

    /// The connection closed or failed: its arrival, if it had one, failed.
    fileprivate func lost(_ connection: Connection, error: String) {
        open.removeAll { $0 === connection }
        idle[connection.target].removeAll { $0 === connection }
        if let current = connection.current {
            connection.current = nil
            finish(current, outcome: .failed(error))
        }
        // Closed before the connect completed: its first request never went out.
        if let (_, current) = connection.pending {
            connection.pending = nil
            finish(current, outcome: .failed(error))
        }
    }

    private func finish(_ current: Current, outcome: Arrival.Result.Outcome) {
        var result = Arrival.Result(outcome: outcome, steps: current.steps)
        (result.holds, result.bookings, result.webhooks) = current.exchange?.created ?? (0, 0, 0)
        record.add(
            result, due: current.due, sent: current.sent, done: clock.now, recorded: current.due >= windowStart && current.due < end,
            windowStart: windowStart)
        inFlight -= 1
        finishedCount += 1
        if waitingHead < waiting.count {
            let waiter = waiting[waitingHead]
            waitingHead += 1
            if waitingHead > 4_096 {
                waiting.removeFirst(waitingHead)
                waitingHead = 0
            }
            begin(waiter.sequence, due: waiter.due)
        }
        if finishedCount == arrivals { done.succeed(()) }
    }

    fileprivate struct Current {
        let sequence: Int
        let due: ContinuousClock.Instant
        let sent: ContinuousClock.Instant
        let exchange: (any Exchange)?
        var steps: [Duration] = []
    }

    /// One keep-alive connection and the request it carries.
    fileprivate final class Connection: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        weak var driver: LoopDriver?
        let target: Int
        var channel: (any Channel)?
        var current: Current?
        /// The first request, while the connection is being made.
        var pending: (Request, Current)?
        var stepStart = ContinuousClock.now
        private var status = 0
        private var body: ByteBuffer?
        private var timeout: Scheduled<Void>?
        private var timedOut = false

        init(driver: LoopDriver, target: Int) {
            self.driver = driver
            self.target = target
        }

        func send(_ request: Request, current: Current, now: ContinuousClock.Instant) {
            self.current = current
            stepStart = now
            guard let channel else { return }
            // A service that never answers must not hang the run: after the timeout the connection
            // is closed, which fails the arrival (`lost`).
            timeout?.cancel()
            timeout = channel.eventLoop.scheduleTask(in: driver?.requestTimeout ?? .seconds(60)) { [weak self] in
                guard let self else { return }
                timedOut = true
                self.channel?.close(promise: nil)
            }
            var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.path)
            if let target = driver?.targets[target] { head.headers.add(name: "Host", value: "\(target.host):\(target.port)") }
            head.headers.add(name: "Content-Length", value: String(request.body.count))
            for (name, value) in request.headers { head.headers.add(name: name, value: value) }
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: request.body))), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
                body = nil
            case .body(var part):
                if var received = body {
                    body = nil
                    received.writeBuffer(&part)
                    body = received
                } else {
                    body = part
                }
            case .end:
                timeout?.cancel()
                timeout = nil
                driver?.answered(self, status: status, body: body ?? ByteBuffer())
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            timeout?.cancel()
            let limit = (driver?.requestTimeout.nanoseconds ?? 0) / 1_000_000
            driver?.lost(self, error: timedOut ? "no answer within \(limit) ms" : "connection closed")
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            driver?.lost(self, error: "\(error)")
            context.close(promise: nil)
        }
    }
}
