import Foundation
import HTTPTypes
import Messaging
import ServiceKit
import SharedModel
import TestSupport
import Testing
import WebhookSignatures

@testable import Notification

@Suite("Delivery: signed attempts on the schedule, outcomes, dead letters")
struct DeliveryFlowTests {
    @Test("a receiver failing 3 times then succeeding gets exactly 4 signed attempts, at 0, 5 s, 5 min and 30 min after each failure")
    func failThreeTimes() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.on("/flaky") { n in n <= 3 ? .init(status: .internalServerError) : .init() }
        let harness = try await NotificationHarness.make()
        try await harness.run { client in
            let endpoint = try await harness.createEndpoint(client, url: receiver.url("/flaky"))
            let start = harness.clock.now
            let event = try NotificationHarness.event(occurredAt: start.addingTimeInterval(1))
            try await harness.fanOut([event])
            #expect(await receiver.waitFor(1, at: "/flaky").count == 1)
            for (n, wait) in [(2, 5.0), (3, 300.0), (4, 1_800.0)] {
                // Just before the due time nothing is sent; at it, the next attempt goes out.
                #expect(try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts") == n - 1 })
                harness.clock.advance(by: .seconds(wait - 1))
                try await Task.sleep(for: .milliseconds(600))
                #expect(receiver.requests("/flaky").count == n - 1, "attempt \(n) not before its time")
                harness.clock.advance(by: .seconds(1))
                #expect(await receiver.waitFor(n, at: "/flaky").count == n, "attempt \(n)")
            }
            #expect(
                try await harness.eventually {
                    try await harness.count("SELECT count(*) FROM notification.deliveries WHERE status = 'succeeded'") == 1
                })
            try await Task.sleep(for: .milliseconds(500))
            let requests = receiver.requests("/flaky")
            #expect(requests.count == 4)
            let secret = try #require(StandardWebhookSecret(endpoint.secret))
            for request in requests {
                #expect(request.webhookID == event.id.description)
                #expect(request.body == Array(try event.jsonData()), "byte-identical body")
                #expect(request.headers[.contentType] == "application/json")
                #expect(throws: Never.self) {
                    try StandardWebhooks.verify(
                        payload: request.body, id: request.webhookID, timestamp: request.timestamp, signatures: request.signature, secrets: [secret],
                        now: Date(timeIntervalSince1970: TimeInterval(Int64(request.timestamp ?? "0") ?? 0)))
                }
            }
            let attempts = try await harness.postgres.query("SELECT status_code FROM notification.attempts ORDER BY id").map {
                try $0.decode(Int32?.self, at: 0)
            }
            #expect(attempts == [500, 500, 500, 200])
        }
    }
}
