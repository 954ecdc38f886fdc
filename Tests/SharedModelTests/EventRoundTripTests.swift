import Foundation
import SharedModel
import Testing

/// For every event type: the JSON key set is exactly DESIGN.md's field list (snake_case, money
/// as `amount` + `currency`), some values are checked literally, and decoding gives back an
/// equal value.
@Suite("Event payloads")
struct EventRoundTripTests {
    private let seats = [(try? SeatID("A-1")), (try? SeatID("A-2"))].compactMap { $0 }

    private func hostID() throws -> HostID { try HostID("host_42") }
    private func customerID() throws -> CustomerID { try CustomerID("cus_123") }
    private func paymentEventID() throws -> PaymentEventID { try PaymentEventID("evt_1") }

    @Test("the catalogue lists every event type of DESIGN.md once, with version 1")
    func catalogue() {
        let types = DomainEventCatalog.all.map { $0.eventType }
        #expect(
            Set(types) == [
                "booking.requested", "payment.requested", "payment.intent_created", "booking.confirmed",
                "booking.cancelled", "booking.expired", "payment.succeeded", "payment.failed",
                "refund.requested", "refund.succeeded", "refund.failed", "payout.created", "payout.paid", "payout.failed",
                "dead_letter.recorded", "notification.endpoint_disabled", "event.cancelled", "payment.disputed",
                "payment.dispute_closed",
            ])
        #expect(types.count == Set(types).count)
        #expect(DomainEventCatalog.all.allSatisfy { $0.version == 1 })
        #expect(DomainEventCatalog.type(named: "booking.expired") == BookingExpired.self)
        #expect(DomainEventCatalog.type(named: "payout.completed") == nil)
    }

    @Test("booking.requested")
    func bookingRequested() throws {
        let event = BookingRequested(
            bookingID: Sample.bookingID, eventID: Sample.eventID, hostID: try hostID(), customerID: try customerID(),
            seatIDs: seats, amount: Money(amount: 5_000, currency: .eur), paymentDueAt: Sample.instant
        )
        let object = try wireObject(event)
        #expect(
            Set(object.keys) == [
                "booking_id", "event_id", "host_id", "customer_id", "seat_ids", "amount", "currency", "payment_due_at",
            ])
        #expect(object["booking_id"] as? String == Sample.bookingText)
        #expect(object["event_id"] as? String == Sample.eventText)
        #expect(object["seat_ids"] as? [String] == ["A-1", "A-2"])
        #expect(object["amount"] as? Int == 5_000)
        #expect(object["currency"] as? String == "EUR")
        #expect(object["payment_due_at"] as? String == Sample.instantText)
        #expect(try roundTripped(event) == event)
        #expect(event.aggregateID == Sample.bookingText)
    }

    @Test("event.cancelled")
    func eventCancelled() throws {
        let event = EventCancelled(
            eventID: Sample.eventID, hostID: try hostID(), reason: "the venue flooded", cancelledAt: Sample.instant, bookings: 1_234)
        let object = try wireObject(event)
        #expect(Set(object.keys) == ["event_id", "host_id", "reason", "cancelled_at", "bookings"])
        #expect(object["event_id"] as? String == Sample.eventText)
        #expect(object["host_id"] as? String == "host_42")
        #expect(object["cancelled_at"] as? String == Sample.instantText)
        #expect(object["bookings"] as? Int == 1_234)
        #expect(try roundTripped(event) == event)
        #expect(event.aggregateID == Sample.eventText)
    }

    @Test("payment.disputed and payment.dispute_closed")
    func disputes() throws {
        let details = DisputeDetails(
            paymentEventID: try paymentEventID(), provider: "stripe", disputeRef: "dp_1", providerRef: "pi_1", bookingID: Sample.bookingID,
            amount: Money(amount: 4_500, currency: .eur), reason: "fraudulent", status: "needs_response", providerCreatedAt: Sample.instant)
        let keys: Set<String> = [
            "payment_event_id", "provider", "dispute_ref", "provider_ref", "booking_id", "amount", "currency", "reason", "status",
            "provider_created_at",
        ]
        let opened = PaymentDisputed(dispute: details)
        let object = try wireObject(opened)
        #expect(Set(object.keys) == keys)
        #expect(object["dispute_ref"] as? String == "dp_1")
        #expect(object["booking_id"] as? String == Sample.bookingText)
        #expect(object["amount"] as? Int == 4_500)
        #expect(object["currency"] as? String == "EUR")
        #expect(object["provider_created_at"] as? String == Sample.instantText)
        #expect(try roundTripped(opened) == opened)
        #expect(opened.aggregateID == Sample.bookingText)

        let unknown = DisputeDetails(
            paymentEventID: try paymentEventID(), provider: "stripe", disputeRef: "dp_1", providerRef: "pi_1", bookingID: nil,
            amount: Money(amount: 4_500, currency: .eur), reason: nil, status: "lost", providerCreatedAt: Sample.instant)
        let closed = PaymentDisputeClosed(dispute: unknown, outcome: .lost)
        let closedObject = try wireObject(closed)
        #expect(Set(closedObject.keys) == keys.union(["outcome"]))
        #expect(closedObject["outcome"] as? String == "lost")
        #expect(closedObject["booking_id"] is NSNull)
        #expect(closedObject["reason"] is NSNull)
        #expect(try roundTripped(closed) == closed)
        #expect(closed.aggregateID == "pi_1")
    }

    @Test("payment.requested")
    func paymentRequested() throws {
        let event = PaymentRequested(
            bookingID: Sample.bookingID, amount: Money(amount: 1_234, currency: .kwd),
            customerID: try customerID(), idempotencyKey: "booking-\(Sample.bookingText)-payment"
        )
        let object = try wireObject(event)
        #expect(Set(object.keys) == ["booking_id", "amount", "currency", "customer_id", "idempotency_key"])
        #expect(object["amount"] as? Int == 1_234)
        #expect(object["currency"] as? String == "KWD")
        #expect(object["customer_id"] as? String == "cus_123")
        #expect(try roundTripped(event) == event)
    }

    @Test("payment.intent_created")
    func paymentIntentCreated() throws {
        let event = PaymentIntentCreated(
            bookingID: Sample.bookingID, provider: "stripe", providerRef: "pi_123", clientSecret: "pi_123_secret_abc"
        )
        let object = try wireObject(event)
        #expect(Set(object.keys) == ["booking_id", "provider", "provider_ref", "client_secret"])
        #expect(object["provider_ref"] as? String == "pi_123")
        #expect(object["client_secret"] as? String == "pi_123_secret_abc")
        #expect(try roundTripped(event) == event)
    }

    @Test("payout.created, payout.paid and payout.failed: the payout's fields at the top level, with its items summed by kind")
    func payoutEvents() throws {
        let payoutID = try #require(UUID(uuidString: "6F1C2A4E-3B5D-4E7F-8A9B-0C1D2E3F4A5B"))
        let details = PayoutDetails(
            payoutID: payoutID, runID: payoutID, hostID: try hostID(), amount: Money(amount: 4_500, currency: .eur),
            items: PayoutItemSummary(count: 2, bookings: 1, revenue: 5_000, fees: -500, refunds: 0, feeReversals: 0))
        let common: Set<String> = ["payout_id", "run_id", "host_id", "amount", "currency", "items"]
        let created = PayoutCreated(payout: details)
        let createdObject = try wireObject(created)
        #expect(Set(createdObject.keys) == common)
        #expect(createdObject["payout_id"] as? String == "6f1c2a4e-3b5d-4e7f-8a9b-0c1d2e3f4a5b")
        let items = try #require(createdObject["items"] as? [String: Any])
        #expect(Set(items.keys) == ["count", "bookings", "revenue", "fee", "refund", "fee_reversal", "dispute", "rounding"])
        #expect(items["dispute"] as? Int == 0)
        #expect(items["rounding"] as? Int == 0)
        #expect(items["fee"] as? Int == -500)
        #expect(items["count"] as? Int == 2)
        #expect(try roundTripped(created) == created)
        #expect(created.aggregateID == "6f1c2a4e-3b5d-4e7f-8a9b-0c1d2e3f4a5b")
        let paid = PayoutPaid(payout: details, providerRef: "tr_1")
        #expect(Set(try wireObject(paid).keys) == common.union(["provider_ref"]))
        #expect(try roundTripped(paid) == paid)
        let failed = PayoutFailed(payout: details, error: "400 transfer_refused: no")
        #expect(Set(try wireObject(failed).keys) == common.union(["error"]))
        #expect(try roundTripped(failed) == failed)
        // A rounded payout: 10.005 KWD paid as 10.000, the 5 fils held back; events written before
        // rounding (no `rounding` key) read as 0.
        let rounded = PayoutItemSummary(count: 2, bookings: 1, revenue: 10_005, fees: 0, refunds: 0, feeReversals: 0, rounding: -5)
        #expect(rounded.total == 10_000)
        let decoded = try JSONDecoder().decode(PayoutItemSummary.self, from: try JSONEncoder().encode(rounded))
        #expect(decoded == rounded)
        let older = try JSONDecoder().decode(
            PayoutItemSummary.self, from: Data(#"{"count":2,"bookings":1,"revenue":5000,"fee":-500,"refund":0,"fee_reversal":0}"#.utf8))
        #expect(older.rounding == 0 && older.disputes == 0 && older.total == 4_500)
        // An item of no booking is `"booking_id": null` on the wire.
        let item =
            try JSONSerialization.jsonObject(
                with: try JSONEncoder().encode(PayoutItem(entryID: 7, bookingID: nil, kind: .rounding, amount: -5))) as? [String: Any]
        #expect(item?["booking_id"] is NSNull && item?["kind"] as? String == "rounding")
    }

    @Test("booking.confirmed")
    func bookingConfirmed() throws {
        let event = BookingConfirmed(
            bookingID: Sample.bookingID, eventID: Sample.eventID, hostID: try hostID(), customerID: try customerID(),
            seatIDs: seats, amount: Money(amount: 5_000, currency: .jpy), providerRef: "pi_123",
            confirmedAt: Sample.instant, eventEndsAt: Sample.later
        )
        let object = try wireObject(event)
        #expect(
            Set(object.keys) == [
                "booking_id", "event_id", "host_id", "customer_id", "seat_ids", "amount", "currency",
                "provider_ref", "confirmed_at", "event_ends_at",
            ])
        #expect(object["host_id"] as? String == "host_42")
        #expect(object["currency"] as? String == "JPY")
        #expect(object["confirmed_at"] as? String == Sample.instantText)
        #expect(object["event_ends_at"] as? String == Sample.laterText)
        #expect(try roundTripped(event) == event)
    }

    @Test("booking.cancelled, every reason")
    func bookingCancelled() throws {
        #expect(CancellationReason.allCases.map(\.rawValue) == ["payment_failed", "customer", "admin", "event_cancelled"])
        for reason in CancellationReason.allCases {
            let event = BookingCancelled(bookingID: Sample.bookingID, reason: reason, refundDue: Money(amount: 2_500, currency: .usd))
            let object = try wireObject(event)
            #expect(Set(object.keys) == ["booking_id", "reason", "refund_due", "currency"])
            #expect(object["reason"] as? String == reason.rawValue)
            #expect(object["refund_due"] as? Int == 2_500)
            #expect(object["currency"] as? String == "USD")
            #expect(try roundTripped(event) == event)
        }
        let unknownReason = #"{"booking_id":"\#(Sample.bookingText)","reason":"weather","refund_due":0,"currency":"EUR"}"#
        #expect(throws: DecodingError.self) {
            try JSONDecoder.platform.decode(BookingCancelled.self, from: Data(unknownReason.utf8))
        }
    }

    @Test("booking.expired")
    func bookingExpired() throws {
        let event = BookingExpired(bookingID: Sample.bookingID)
        let object = try wireObject(event)
        #expect(Set(object.keys) == ["booking_id"])
        #expect(object["booking_id"] as? String == Sample.bookingText)
        #expect(try roundTripped(event) == event)
    }

    @Test("payment.succeeded, with and without a booking")
    func paymentSucceeded() throws {
        for bookingID in [Sample.bookingID, nil] {
            let event = PaymentSucceeded(
                paymentEventID: try paymentEventID(), provider: "stripe", providerRef: "pi_123", bookingID: bookingID,
                amount: Money(amount: 5_000, currency: .eur), providerCreatedAt: Sample.instant, receivedAt: Sample.later
            )
            let object = try wireObject(event)
            #expect(
                Set(object.keys) == [
                    "payment_event_id", "provider", "provider_ref", "booking_id", "amount", "currency",
                    "provider_created_at", "received_at",
                ])
            #expect(object["payment_event_id"] as? String == "evt_1")
            #expect(object["provider_created_at"] as? String == Sample.instantText)
            #expect(object["received_at"] as? String == Sample.laterText)
            if bookingID == nil {
                #expect(object["booking_id"] is NSNull, "absent optionals are an explicit null")
                #expect(event.aggregateID == "pi_123")
            } else {
                #expect(object["booking_id"] as? String == Sample.bookingText)
                #expect(event.aggregateID == Sample.bookingText)
            }
            #expect(try roundTripped(event) == event)
        }
    }

    @Test("payment.failed")
    func paymentFailed() throws {
        let event = PaymentFailed(
            paymentEventID: try paymentEventID(), provider: "stripe", providerRef: "pi_123", bookingID: Sample.bookingID,
            amount: Money(amount: 5_000, currency: .eur), providerCreatedAt: Sample.instant, receivedAt: Sample.later,
            reason: "card_declined", isFinal: false
        )
        let object = try wireObject(event)
        #expect(
            Set(object.keys) == [
                "payment_event_id", "provider", "provider_ref", "booking_id", "amount", "currency",
                "provider_created_at", "received_at", "reason", "final",
            ])
        #expect(object["reason"] as? String == "card_declined")
        #expect(object["final"] as? Bool == false)
        #expect(try roundTripped(event) == event)
        // An event written before `final` existed was final.
        var older = object
        older.removeValue(forKey: "final")
        let decoded = try JSONDecoder.platform.decode(PaymentFailed.self, from: try JSONSerialization.data(withJSONObject: older))
        #expect(decoded.isFinal)
    }

    @Test("refund.requested")
    func refundRequested() throws {
        let event = RefundRequested(
            refundID: Sample.refundID, bookingID: Sample.bookingID, providerRef: "pi_123",
            amount: Money(amount: 5_000, currency: .eur), reason: .latePayment, idempotencyKey: "refund-\(Sample.refundText)"
        )
        let object = try wireObject(event)
        #expect(Set(object.keys) == ["refund_id", "booking_id", "provider_ref", "amount", "currency", "reason", "idempotency_key"])
        #expect(object["refund_id"] as? String == Sample.refundText)
        #expect(object["reason"] as? String == "late_payment")
        #expect(try roundTripped(event) == event)
    }

    @Test("refund.succeeded")
    func refundSucceeded() throws {
        let event = RefundSucceeded(
            refundID: Sample.refundID, bookingID: Sample.bookingID, providerRef: "pi_123", amount: Money(amount: 5_000, currency: .eur),
            providerRefundRef: "re_123"
        )
        let object = try wireObject(event)
        #expect(Set(object.keys) == ["refund_id", "booking_id", "provider_ref", "amount", "currency", "provider_refund_ref"])
        #expect(object["provider_refund_ref"] as? String == "re_123")
        #expect(object["amount"] as? Int == 5_000)
        #expect(try roundTripped(event) == event)
    }

    @Test("refund.failed, refund id unknown")
    func refundFailed() throws {
        let event = RefundFailed(
            refundID: nil, bookingID: Sample.bookingID, providerRef: "pi_123",
            amount: Money(amount: 5_000, currency: .eur), error: "charge_already_refunded"
        )
        let object = try wireObject(event)
        #expect(Set(object.keys) == ["refund_id", "booking_id", "provider_ref", "amount", "currency", "error"])
        #expect(object["refund_id"] is NSNull)
        #expect(object["error"] as? String == "charge_already_refunded")
        #expect(try roundTripped(event) == event)
    }

    @Test("notification.endpoint_disabled")
    func endpointDisabled() throws {
        let endpoint = UUID()
        let event = EndpointDisabled(endpointID: endpoint, reason: "the endpoint answered 410 Gone", failingSince: nil)
        let object = try wireObject(event)
        #expect(Set(object.keys) == ["endpoint_id", "reason", "failing_since"])
        #expect(object["endpoint_id"] as? String == endpoint.uuidString.lowercased())
        #expect(object["failing_since"] is NSNull)
        #expect(try roundTripped(event) == event)
        let failing = EndpointDisabled(endpointID: endpoint, reason: "failing for 5 days", failingSince: Sample.instant)
        #expect(try wireObject(failing)["failing_since"] as? String == Sample.instantText)
        #expect(try roundTripped(failing) == failing)
        #expect(event.aggregateID == endpoint.uuidString.lowercased())
    }

    @Test("nullable fields decode from null and from a missing key alike")
    func absentOrNull() throws {
        let withNulls = #"""
            {"payment_event_id":"evt_9","provider":"internal","provider_ref":"ref_9","booking_id":null,
             "amount":100,"currency":"eur","provider_created_at":"2026-11-21T09:44:21.123+01:00",
             "received_at":"2026-11-21T08:44:21.123Z","reason":null}
            """#
        let withoutKeys = #"""
            {"payment_event_id":"evt_9","provider":"internal","provider_ref":"ref_9",
             "amount":100,"currency":"eur","provider_created_at":"2026-11-21T09:44:21.123+01:00",
             "received_at":"2026-11-21T08:44:21.123Z"}
            """#
        let a = try JSONDecoder.platform.decode(PaymentFailed.self, from: Data(withNulls.utf8))
        let b = try JSONDecoder.platform.decode(PaymentFailed.self, from: Data(withoutKeys.utf8))
        #expect(a == b)
        #expect(a.bookingID == nil)
        #expect(a.reason == nil)
        #expect(a.amount == Money(amount: 100, currency: .eur))
        #expect(a.providerCreatedAt == Sample.instant)
    }

    @Test("field names and formats do not depend on the coder's configuration")
    func plainCoders() throws {
        let event = BookingRequested(
            bookingID: Sample.bookingID, eventID: Sample.eventID, hostID: try hostID(), customerID: try customerID(),
            seatIDs: seats, amount: Money(amount: 5_000, currency: .eur), paymentDueAt: Sample.instant
        )
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(event)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["payment_due_at"] as? String == Sample.instantText)
        #expect(object["booking_id"] as? String == Sample.bookingText)
        #expect(try JSONDecoder().decode(BookingRequested.self, from: data) == event)
    }

    @Test(
        "payloads with invalid fields are refused",
        arguments: [
            #"{"booking_id":"not-a-uuid"}"#,
            #"{"booking_id":null}"#,
            #"{}"#,
        ])
    func invalidPayloads(json: String) {
        #expect(throws: DecodingError.self) {
            try JSONDecoder.platform.decode(BookingExpired.self, from: Data(json.utf8))
        }
    }

    @Test("money fields refuse fractional amounts and bad currencies")
    func invalidMoney() {
        let fractional = #"{"booking_id":"\#(Sample.bookingText)","amount":50.5,"currency":"EUR","customer_id":"c","idempotency_key":"k"}"#
        let badCurrency = #"{"booking_id":"\#(Sample.bookingText)","amount":50,"currency":"EURO","customer_id":"c","idempotency_key":"k"}"#
        let emptySeat = #"{"booking_id":"\#(Sample.bookingText)","amount":50,"currency":"EUR","customer_id":" ","idempotency_key":"k"}"#
        for json in [fractional, badCurrency, emptySeat] {
            #expect(throws: DecodingError.self) {
                try JSONDecoder.platform.decode(PaymentRequested.self, from: Data(json.utf8))
            }
        }
    }
}
