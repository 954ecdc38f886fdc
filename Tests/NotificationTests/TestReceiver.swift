import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TestSupport

/// A webhook receiver on a loopback port: records every request (path, headers, body, time) and
/// answers per path as the test says (status, headers, a delay before answering).
final class TestReceiver: Sendable {
    struct Received: Sendable {
        let path: String
        let headers: HTTPFields
        let body: [UInt8]
        let at: Date

        var webhookID: String? { headers[HTTPField.Name("webhook-id")!] }
        var timestamp: String? { headers[HTTPField.Name("webhook-timestamp")!] }
        var signature: String? { headers[HTTPField.Name("webhook-signature")!] }
    }

    struct Reply: Sendable {
        var status: HTTPResponse.Status = .ok
        var headers: HTTPFields = [:]
        var delay: Duration = .zero
        var body = "ok"
    }

    /// What a path answers to its `n`th request (1-based).
    typealias Behaviour = @Sendable (_ n: Int) -> Reply

    private let received = Mutex<[Received]>([])
    private let behaviours = Mutex<[String: Behaviour]>([:])
    private let counts = Mutex<[String: Int]>([:])
    private let portValue = Mutex<Int?>(nil)
    private let group = Mutex<ServiceGroup?>(nil)
    private let task = Mutex<Task<Void, any Error>?>(nil)

    var port: Int { portValue.withLock { $0 } ?? 0 }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Starts listening; returns once the port is known.
    static func start() async throws -> TestReceiver {
        let receiver = TestReceiver()
        let router = Router()
        router.post("**") { request, _ -> Response in
            let path = request.uri.path
            let body = try await request.body.collect(upTo: 1 << 20)
            let n = receiver.counts.withLock { counts -> Int in
                counts[path, default: 0] += 1
                return counts[path]!
            }
            receiver.received.withLock {
                $0.append(Received(path: path, headers: request.headers, body: Array(buffer: body), at: Date()))
            }
            let reply = receiver.behaviours.withLock { $0[path] }?(n) ?? Reply()
            if reply.delay > .zero { try await Task.sleep(for: reply.delay) }
            return Response(status: reply.status, headers: reply.headers, body: .init(byteBuffer: ByteBuffer(string: reply.body)))
        }
        let ready = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "test-receiver")
        logger.logLevel = .warning
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                ready.continuation.yield(channel.localAddress?.port ?? 0)
                ready.continuation.finish()
            }, logger: logger)
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        receiver.group.withLock { $0 = serviceGroup }
        receiver.task.withLock { $0 = Task { try await serviceGroup.run() } }
        for await port in ready.stream { receiver.portValue.withLock { $0 = port } }
        return receiver
    }

    func stop() async {
        let serviceGroup = group.withLock { $0 }
        await serviceGroup?.triggerGracefulShutdown()
        _ = try? await task.withLock { $0 }?.value
    }

    func on(_ path: String, _ behaviour: @escaping Behaviour) {
        behaviours.withLock { $0[path] = behaviour }
    }

    func requests(_ path: String? = nil) -> [Received] {
        received.withLock { all in path.map { path in all.filter { $0.path == path } } ?? all }
    }

    /// Waits until `path` got at least `count` requests (or `timeout` passed); returns them.
    @discardableResult
    func waitFor(_ count: Int, at path: String? = nil, timeout: Duration = .seconds(15)) async -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let got = requests(path)
            if got.count >= count { return got }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return requests(path)
    }
}
