import Foundation
import Glibc
import HTTPTypes
import HummingbirdTesting
import Messaging
import NIOCore
import Postgres
import SharedModel
import TestSupport
import Testing

@Suite("Disputes over real processes: the simulator, payments-webhook, booking and payout")
struct DisputeFlowTests {
    @Test(
        "two paid bookings disputed at the simulator: each report stored once, the bookings show their disputes, the operator gets review dead letters, the host's entries are held; one lost (the host debited by its amount), one won (released), refunds of the lost one refused"
    )
    func disputesOpenAndClose() async throws {
        try await PaymentsSystem.run(prefix: "e2e_dispute") { system in
            let postgres = system.postgres
            @Sendable func count(_ statement: PostgresStatement) async throws -> Int { try await postgres.count(statement) }
            /// Whether every statement counts what it is paired with.
            @Sendable func counts(_ expected: [(PostgresStatement, Int)]) async throws -> Bool {
                for (statement, value) in expected where try await count(statement) != value { return false }
                return true
            }
            func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
                try await system.waitUntil(what, timeout: .seconds(30), condition)
            }
            let booking = try await BookingProcess.start(system)
            let payoutPort = try freePort()
            let payout = try ServiceProcess.start(
                "payout",
                environment: system.started.shared.merging([
                    "PORT": String(payoutPort), "PROVIDER_API_KEY": "sk_test_e2e",
                    "PROVIDER_BASE_URL": "http://127.0.0.1:\(system.started.simulator.port)",
                ]) { _, new in new }, port: payoutPort)
            #expect(await waitFor("/healthz", port: payoutPort, status: 200)?.status == 200, "payout: \(payout.output)")

            let event = try await booking.createEvent(seats: 3)
            let ids = [try await booking.book(event, seat: 1), try await booking.book(event, seat: 2), try await booking.book(event, seat: 3)]
            try await waitUntil("three payment intents") {
                try await count("SELECT count(*) FROM booking.bookings WHERE payment_provider_ref IS NOT NULL") == 3
            }
            var intents: [String] = []
            for id in ids {
                let (_, shown) = try await booking.call(.get, "/v1/bookings/\(id)", admin: true)
                intents.append(try #require(shown?["payment"]?["provider_ref"]?.stringValue))
            }
            for intent in intents {
                #expect(try await system.simulatorCall(.post, "/simulator/payment_intents/\(intent)/succeed").0 == 200)
            }
            try await waitUntil("three bookings confirmed and in the ledger") {
                try await counts([
                    ("SELECT count(*) FROM booking.bookings WHERE status = 'confirmed'", 3), ("SELECT count(*) FROM payout.bookings", 3),
                ])
            }

            // Booking 1 disputed in full (to be lost), booking 2 in part (to be won).
            let (opened1, dispute1) = try await system.simulatorCall(.post, "/simulator/disputes", #"{"payment_intent":"\#(intents[0])"}"#)
            let (opened2, dispute2) = try await system.simulatorCall(
                .post, "/simulator/disputes", #"{"payment_intent":"\#(intents[1])","amount":1000,"reason":"product_not_received"}"#)
            #expect(opened1 == 200 && opened2 == 200)
            let lostRef = try #require(dispute1?["id"]?.stringValue)
            let wonRef = try #require(dispute2?["id"]?.stringValue)
            try await waitUntil("both disputes open in booking and payout, with two review dead letters") {
                try await counts([
                    ("SELECT count(*) FROM booking.disputes WHERE status = 'open'", 2),
                    ("SELECT count(*) FROM payout.disputes WHERE status = 'open'", 2),
                    ("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'", 2),
                ])
            }
            // Each of the four reports (created, funds_withdrawn) stored once and mapped to payment.disputed.
            #expect(
                try await count(
                    """
                    SELECT count(*) FROM payments.provider_events
                    WHERE event_type IN ('charge.dispute.created', 'charge.dispute.funds_withdrawn') AND status = 'accepted'
                      AND domain_event_type = 'payment.disputed' AND booking_id IS NOT NULL
                    """) == 4)
            let (_, shown) = try await booking.call(.get, "/v1/bookings/\(ids[0])", admin: true)
            #expect(shown?["status"] == "confirmed")
            #expect(shown?["dispute"]?["id"]?.stringValue == lostRef)
            #expect(shown?["dispute"]?["status"] == "open")
            #expect(shown?["dispute"]?["amount"] == 2_500)
            #expect(shown?["dispute"]?["currency"] == "EUR")
            #expect(shown?["dispute"]?["reason"] == "fraudulent")
            #expect(try await booking.call(.get, "/v1/bookings/\(ids[2])", admin: true).json?["dispute"] == .null)
            let review = try await postgres.query("SELECT error FROM messaging.dead_letters WHERE kind = 'review' AND aggregate_id = \(ids[0])")
            #expect(review.count == 1)
            #expect((try review.first?.decode(String.self, at: 0))?.contains(lostRef) == true)
            // The host's entries of the two disputed bookings are held (2,500 less the 10% fee each); the third is pending its event.
            #expect(try await payoutBalance(port: payoutPort) == ["currency": "EUR", "payable": 0, "pending": 2_250, "held": 4_500])

            #expect(try await system.simulatorCall(.post, "/simulator/disputes/\(lostRef)/close", #"{"status":"lost"}"#).0 == 200)
            #expect(try await system.simulatorCall(.post, "/simulator/disputes/\(wonRef)/close", #"{"status":"won"}"#).0 == 200)
            try await waitUntil("one dispute lost and one won, everywhere") {
                try await counts([
                    ("SELECT count(*) FROM booking.disputes WHERE status = 'lost'", 1),
                    ("SELECT count(*) FROM booking.disputes WHERE status = 'won'", 1),
                    ("SELECT count(*) FROM payout.disputes WHERE status <> 'open'", 2),
                ])
            }
            #expect(try await booking.call(.get, "/v1/bookings/\(ids[0])", admin: true).json?["dispute"]?["status"] == "lost")
            #expect(try await booking.call(.get, "/v1/bookings/\(ids[1])", admin: true).json?["dispute"]?["status"] == "won")
            // The loss: one debit of the disputed amount; the win: none. A third review dead letter, for the loss.
            #expect(try await count("SELECT count(*) FROM payout.entries WHERE kind = 'dispute'") == 1)
            #expect(
                try await count("SELECT count(*) FROM payout.entries WHERE kind = 'dispute' AND amount = -2500 AND booking_id = \(ids[0])::uuid") == 1
            )
            #expect(try await count("SELECT count(*) FROM messaging.dead_letters WHERE kind = 'review'") == 3)
            #expect(
                try await count(
                    "SELECT count(*) FROM payments.provider_events WHERE event_type = 'charge.dispute.closed' AND domain_event_type = 'payment.dispute_closed'"
                ) == 2)
            try await waitUntil("funds_reinstated stored as ignored") {
                try await count(
                    "SELECT count(*) FROM payments.provider_events WHERE event_type = 'charge.dispute.funds_reinstated' AND status = 'ignored'")
                    == 1
            }
            // Nothing held any more; the debit is payable at once, the revenue waits for the event.
            #expect(try await payoutBalance(port: payoutPort) == ["currency": "EUR", "payable": -2_500, "pending": 6_750, "held": 0])

            // The provider refuses to refund a charged-back payment: an admin's cancellation of the lost booking ends in compensation_failed.
            let (cancelled, answer) = try await booking.call(.post, "/v1/bookings/\(ids[0])/cancel", #"{"customer_id":"cus_1"}"#)
            #expect(cancelled == 200, "\(String(describing: answer))")
            try await waitUntil("the refund of the charged-back booking refused") {
                try await count("SELECT count(*) FROM payments.refunds WHERE booking_id = \(ids[0])::uuid AND outcome = 'refused'") == 1
            }
            try await waitUntil("the saga of the charged-back booking compensation_failed") {
                try await booking.call(.get, "/v1/bookings/\(ids[0])", admin: true).json?["saga_state"] == "compensation_failed"
            }
            await booking.stop(signal: SIGTERM)
        }
    }

    /// host_1's balance in its one currency, from payout's API.
    private func payoutBalance(port: Int) async throws -> JSONValue? {
        let client = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(10)))
        client.connect()
        defer { Task { try? await client.shutdown() } }
        let response = try await client.execute(.init("/v1/hosts/host_1/balance", method: .get, headers: [.authorization: "Bearer admin"]))
        let json = response.body.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: $0)) }
        return json?["balances"]?.arrayValue?.first
    }
}
