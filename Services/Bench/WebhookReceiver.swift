import ArgumentParser
import Foundation
import Hummingbird
import Logging
import SharedModel
import Synchronization

/// `platform-bench receiver`: the local webhook receiver of `scripts/bench notification`. Answers 204
/// to a `POST` on any path at once, except paths starting with `/slow`, which it answers after
/// `--slow-seconds` (10 s). For each request with a `webhook-id` it reads the body's `occurred_at`
/// and records latency = the moment the request reached the handler - `occurred_at` (the sender's
/// wall clock at append; the same machine's clock), per path group: `healthy` (paths starting
/// with `/hook`), `slow` (`/slow...`) and `other` (anything else, e.g. the bench's warm-up endpoints
/// `/warm/<i>` and wrk's requests: parsed the same way, counted, not recorded). A path +
/// `webhook-id` seen before is a duplicate (healthy and slow).
///
/// - `GET /stats`: `{"healthy": Group, "slow": Group, "other": {"count"}}`, Group = `{count,
///   first_received, last_received (epoch seconds), p50_ms, p99_ms, max_ms, duplicates, paths,
///   per_path: {path: count}}`.
/// - `GET /stats/count`: `<healthy> <slow> <other>` counts (cheap: the bench's closed loop polls it).
/// - `POST /stats/reset`: forgets everything recorded.
struct Receiver: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receiver", abstract: "A local webhook receiver that records delivery latency (scripts/bench notification).")
    @Option(help: "Port to listen on (127.0.0.1).") var port: Int
    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Seconds a request to /slow... waits before its answer.") var slowSeconds: Int = 10

    func run() async throws {
        var logger = Logger(label: "receiver")
        logger.logLevel = .warning
        let stats = ReceiverStats()
        let slow = Duration.seconds(slowSeconds)
        let router = Router(context: BasicRequestContext.self)
        router.get("stats") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: stats.snapshotJSON())))
        }
        router.get("stats/count") { _, _ in
            let (healthy, slow, other) = stats.counts()
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "\(healthy) \(slow) \(other)\n")))
        }
        router.post("stats/reset") { _, _ in
            stats.reset()
            return Response(status: .noContent)
        }
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let received = Date()
            let path = request.uri.path
            let body = try await request.body.collect(upTo: 1 << 20)
            if let id = request.headers.first(where: { $0.name.canonicalName == "webhook-id" })?.value {
                let occurred = ReceiverStats.occurredAt(in: body.readableBytesView)
                stats.record(path: path, webhookID: id, latency: occurred.map { received.timeIntervalSince($0) * 1000 }, at: received)
            }
            if path.hasPrefix("/slow") { try await Task.sleep(for: slow) }
            return Response(status: .noContent)
        }
        router.post("**", use: handler)
        router.post("/", use: handler)
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "bench-receiver"), logger: logger)
        try await app.runService()
    }
}

/// What the receiver recorded, per path group.
final class ReceiverStats: Sendable {
    private struct Group {
        var latencies: [Double] = []
        var count = 0
        var first: Date?
        var last: Date?
        var duplicates = 0
        var seen: Set<String> = []
        var perPath: [String: Int] = [:]

        mutating func add(path: String, webhookID: String, latency: Double?, at date: Date, keep: Bool) {
            count += 1
            if first == nil { first = date }
            last = date
            guard keep else { return }
            if let latency { latencies.append(latency) }
            if !seen.insert(path + " " + webhookID).inserted { duplicates += 1 }
            perPath[path, default: 0] += 1
        }
    }

    private struct State {
        var healthy = Group()
        var slow = Group()
        var other = Group()
    }

    private let state = Mutex(State())

    func record(path: String, webhookID: String, latency: Double?, at date: Date) {
        state.withLock { state in
            if path.hasPrefix("/slow") {
                state.slow.add(path: path, webhookID: webhookID, latency: latency, at: date, keep: true)
            } else if path.hasPrefix("/hook") {
                state.healthy.add(path: path, webhookID: webhookID, latency: latency, at: date, keep: true)
            } else {
                state.other.add(path: path, webhookID: webhookID, latency: latency, at: date, keep: false)
            }
        }
    }

    func reset() { state.withLock { $0 = State() } }

    func counts() -> (healthy: Int, slow: Int, other: Int) { state.withLock { ($0.healthy.count, $0.slow.count, $0.other.count) } }

    func snapshotJSON() -> [UInt8] {
        let (healthy, slow, other) = state.withLock { ($0.healthy, $0.slow, $0.other.count) }
        func group(_ group: Group) -> String {
            let sorted = group.latencies.sorted()
            func quantile(_ p: Double) -> String {
                guard !sorted.isEmpty else { return "null" }
                return String(format: "%.3f", sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))])
            }
            let paths = group.perPath.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
            return """
                {"count":\(group.count),"first_received":\(group.first.map { String(format: "%.6f", $0.timeIntervalSince1970) } ?? "null"),\
                "last_received":\(group.last.map { String(format: "%.6f", $0.timeIntervalSince1970) } ?? "null"),\
                "p50_ms":\(quantile(0.5)),"p99_ms":\(quantile(0.99)),"max_ms":\(sorted.last.map { String(format: "%.3f", $0) } ?? "null"),\
                "duplicates":\(group.duplicates),"paths":\(group.perPath.count),"per_path":{\(paths)}}
                """
        }
        return Array("{\"healthy\":\(group(healthy)),\"slow\":\(group(slow)),\"other\":{\"count\":\(other)}}\n".utf8)
    }

    /// The instant of the body's `"occurred_at": "<RFC 3339>"` (found by bytes, not a JSON parse).
    static func occurredAt(in body: some Collection<UInt8>) -> Date? {
        let bytes = Array(body)
        let key = Array("\"occurred_at\"".utf8)
        guard bytes.count > key.count else { return nil }
        var i = 0
        search: while i <= bytes.count - key.count {
            for j in 0..<key.count where bytes[i + j] != key[j] {
                i += 1
                continue search
            }
            var k = i + key.count
            while k < bytes.count, bytes[k] == UInt8(ascii: " ") || bytes[k] == UInt8(ascii: ":") { k += 1 }
            guard k < bytes.count, bytes[k] == UInt8(ascii: "\"") else { return nil }
            let start = k + 1
            guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
            return try? RFC3339.date(from: String(decoding: bytes[start..<end], as: UTF8.self))
        }
        return nil
    }
}
