import AsyncHTTPClient
import Logging
import ServiceLifecycle
import Testing

@testable import ProviderSimulator

@Suite("The simulator as a server")
struct LiveServerTests {
    @Test("buildSimulator on port 0 reports its port, serves real HTTP and stops on graceful shutdown")
    func liveServer() async throws {
        var configuration = SimulatorConfiguration(apiKey: testAPIKey)
        configuration.port = 0
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = buildSimulator(configuration: configuration, logger: Logger(label: "live-test")) { port in continuation.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "live-test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            #expect(port > 0)

            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/payment_intents")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(testAPIKey)")
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(Array("amount=1200&currency=gbp&metadata[booking_id]=bk_live".utf8))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            #expect(response.status.code == 200)
            let body = try await response.body.collect(upTo: 1 << 16)
            let intent = JSONObject(body)
            #expect(intent["currency"] as? String == "gbp")
            #expect(intent.object("metadata")["booking_id"] as? String == "bk_live")

            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
