import Foundation
import HTTPTypes
import HummingbirdTesting
import Messaging
import ServiceKit
import SharedModel
import TestSupport
import Testing

@testable import PaymentsWebhook

@Suite("Stored provider events are kept for PROVIDER_EVENT_RETENTION, at least 120 days (disputes arrive that late)")
struct ProviderEventRetentionTests {
    @Test("events received before the retention are deleted, newer ones kept; a retention under 120 days stops start-up")
    func retention() async throws {
        let harness = try await PaymentsHarness.make()
        try await harness.run { client in
            for _ in 0..<3 {
                let answer = try await client.stripe(Deliveries.stripeEvent(type: "payment_intent.succeeded", object: Deliveries.paymentIntent()))
                #expect(answer.status == .ok)
            }
        }
        _ = try await harness.postgres.query(
            "UPDATE payments.provider_events SET received_at = now() - interval '121 days' WHERE id IN (SELECT id FROM payments.provider_events LIMIT 2)"
        )
        let sweeper = RetentionSweeper(postgres: harness.postgres, rules: harness.parts.retentionRules, logger: TestEnvironment.logger)
        #expect(try await sweeper.sweep()["payments.provider_events"] == 2)
        #expect(try await harness.count("SELECT count(*) FROM payments.provider_events") == 1)

        #expect(harness.parts.configuration.providerEventRetention == .seconds(120 * 86_400))
        await #expect(throws: ConfigurationError.self) { _ = try await PaymentsHarness.make(settings: ["PROVIDER_EVENT_RETENTION": "720h"]) }
    }
}
