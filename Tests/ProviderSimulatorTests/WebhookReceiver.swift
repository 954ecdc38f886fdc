import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// A real HTTP endpoint that records every webhook it receives and answers with scripted statuses
/// (then 200).
actor WebhookReceiver {
    struct Received: Sendable {
        let headers: HTTPFields
        let body: [UInt8]
    }

    private(set) var received: [Received] = []
    private var scripted: [Int]

    init(statuses: [Int]) {
        self.scripted = statuses
    }

    func receive(headers: HTTPFields, body: [UInt8]) -> Int {
        received.append(Received(headers: headers, body: body))
        return scripted.isEmpty ? 200 : scripted.removeFirst()
    }

    /// Waits until `count` requests arrived (or 5 s passed) and returns what arrived.
    nonisolated func waitFor(_ count: Int) async throws -> [Received] {
        _ = try await eventually { await self.received.count >= count }
        return await received
    }
}

/// Runs a live receiver on a free port for the duration of `body`, passing its URL.
func withWebhookReceiver<Value: Sendable>(
    statuses: [Int] = [], _ body: @Sendable (String, WebhookReceiver) async throws -> Value
) async throws -> Value {
    let receiver = WebhookReceiver(statuses: statuses)
    let router = Router()
    router.post("hooks/stripe") { request, _ in
        let bytes = try await request.body.collect(upTo: 1 << 20)
        let status = await receiver.receive(headers: request.headers, body: Array(bytes.readableBytesView))
        return Response(status: .init(code: status))
    }
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    return try await app.test(.live) { client in
        let port = try #require(client.port)
        return try await body("http://127.0.0.1:\(port)/hooks/stripe", receiver)
    }
}
