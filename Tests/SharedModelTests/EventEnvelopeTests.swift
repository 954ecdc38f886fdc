import Foundation
import SharedModel
import Testing

@Suite("Event envelope")
struct EventEnvelopeTests {
    private let envelopeID = EnvelopeID(UUID(uuidString: "11111111-2222-4333-8444-555555555555") ?? UUID())

    private func confirmed() throws -> BookingConfirmed {
        BookingConfirmed(
            bookingID: Sample.bookingID, eventID: Sample.eventID, hostID: try HostID("host_42"),
            customerID: try CustomerID("cus_123"), seatIDs: [try SeatID("A-1")],
            amount: Money(amount: 5_000, currency: .eur), providerRef: "pi_123",
            confirmedAt: Sample.instant, eventEndsAt: Sample.later
        )
    }

    @Test("a typed event is wrapped with the envelope fields of DESIGN.md")
    func wrapTyped() throws {
        let envelope = try EventEnvelope(
            event: try confirmed(), id: envelopeID, occurredAt: Sample.instant, sequence: 3,
            correlationID: "req-1", causationID: nil, producer: .booking
        )
        #expect(envelope.type == "booking.confirmed")
        #expect(envelope.version == 1)
        #expect(envelope.aggregateID == Sample.bookingText)

        let object = try wireObject(envelope)
        #expect(
            Set(object.keys) == [
                "id", "type", "version", "occurred_at", "aggregate_id", "sequence",
                "correlation_id", "causation_id", "producer", "data",
            ])
        #expect(object["id"] as? String == "11111111-2222-4333-8444-555555555555")
        #expect(object["type"] as? String == "booking.confirmed")
        #expect(object["version"] as? Int == 1)
        #expect(object["occurred_at"] as? String == Sample.instantText)
        #expect(object["aggregate_id"] as? String == Sample.bookingText)
        #expect(object["sequence"] as? Int == 3)
        #expect(object["correlation_id"] as? String == "req-1")
        #expect(object["causation_id"] is NSNull)
        #expect(object["producer"] as? String == "booking")
        let data = try #require(object["data"] as? [String: Any])
        #expect(data["provider_ref"] as? String == "pi_123")
        #expect(data["amount"] as? Int == 5_000)
    }

    @Test("an envelope round-trips through JSON and its data decodes to the typed event")
    func roundTrip() throws {
        let event = try confirmed()
        let envelope = try EventEnvelope(
            event: event, occurredAt: Sample.instant, sequence: 1, correlationID: "req-1",
            causationID: "cause-1", producer: .booking
        )
        let decoded = try EventEnvelope(jsonData: envelope.jsonData())
        #expect(decoded == envelope)
        #expect(decoded.isEvent(BookingConfirmed.self))
        #expect(try decoded.decode(BookingConfirmed.self) == event)
    }

    @Test("occurred_at accepts any RFC 3339 offset and means the same instant")
    func occurredAtOffsets() throws {
        let json = #"""
            {"id":"11111111-2222-4333-8444-555555555555","type":"booking.expired","version":1,
             "occurred_at":"2026-11-21T10:44:21.123+02:00","aggregate_id":"\#(Sample.bookingText)",
             "sequence":7,"correlation_id":"req-1","producer":"booking",
             "data":{"booking_id":"\#(Sample.bookingText)"}}
            """#
        let envelope = try EventEnvelope(jsonData: Data(json.utf8))
        #expect(envelope.occurredAt == Sample.instant)
        #expect(envelope.causationID == nil, "a missing causation_id decodes as nil")
        #expect(try wireObject(envelope)["occurred_at"] as? String == Sample.instantText)
        #expect(try envelope.decode(BookingExpired.self) == BookingExpired(bookingID: Sample.bookingID))

        let noFraction = json.replacingOccurrences(of: "10:44:21.123+02:00", with: "03:44:21-05:00")
        #expect(try EventEnvelope(jsonData: Data(noFraction.utf8)).occurredAt == Date(timeIntervalSince1970: 1_795_250_661))

        let naive = json.replacingOccurrences(of: "10:44:21.123+02:00", with: "10:44:21.123")
        #expect(throws: DecodingError.self) { try EventEnvelope(jsonData: Data(naive.utf8)) }
    }

    @Test("decoding typed data with the wrong type string fails")
    func wrongType() throws {
        let envelope = try EventEnvelope(
            event: BookingExpired(bookingID: Sample.bookingID), occurredAt: Sample.instant, sequence: 1,
            correlationID: "req-1", causationID: nil, producer: .booking
        )
        #expect(throws: EnvelopeError.typeMismatch(expected: "booking.cancelled", actual: "booking.expired")) {
            try envelope.decode(BookingCancelled.self)
        }
        // Same data shape, different type: still refused, never reinterpreted.
        let relabelled = EventEnvelope(
            type: "booking.requested", version: 1, occurredAt: Sample.instant, aggregateID: envelope.aggregateID,
            sequence: 1, correlationID: "req-1", causationID: nil, producer: .booking, data: envelope.data
        )
        #expect(throws: EnvelopeError.typeMismatch(expected: "booking.expired", actual: "booking.requested")) {
            try relabelled.decode(BookingExpired.self)
        }
        #expect(!relabelled.isEvent(BookingExpired.self))
    }

    @Test("data that does not match the type is reported as invalid data")
    func invalidData() {
        let envelope = EventEnvelope(
            type: "booking.expired", version: 1, occurredAt: Sample.instant, aggregateID: "x", sequence: 1,
            correlationID: "req-1", causationID: nil, producer: .booking, data: ["booking_id": "not-a-uuid"]
        )
        #expect {
            try envelope.decode(BookingExpired.self)
        } throws: { error in
            guard case EnvelopeError.invalidData(let type, _) = error else { return false }
            return type == "booking.expired"
        }
    }

    @Test("an unknown event type survives decode and re-encode byte for byte")
    func unknownType() throws {
        // Sorted keys, no white space: the platform encoder's canonical form.
        let original = [
            #"{"aggregate_id":"host_42","causation_id":null,"correlation_id":"req-9","#,
            #""data":{"amount":120000,"currency":"EUR","items":[{"entry_id":"e-1","fee_rate":0.029,"tiny":1.5e-7},"#,
            #"{"big":123456789012345678901234567890,"flag":true,"nested":{"empty":[],"none":null}}],"note":"über / ok"},"#,
            #""id":"11111111-2222-4333-8444-555555555555","occurred_at":"2026-11-21T08:44:21.123Z","producer":"payout","#,
            #""sequence":9223372036854775807,"type":"payout.completed","version":3}"#,
        ].joined()
        let envelope = try EventEnvelope(jsonData: Data(original.utf8))
        #expect(envelope.type == "payout.completed")
        #expect(envelope.version == 3)
        #expect(envelope.producer == .payout)
        #expect(envelope.data["amount"] == .integer(120_000))
        #expect(DomainEventCatalog.type(named: envelope.type) == nil)

        let reencoded = try envelope.jsonData()
        let originalObject = try #require(try JSONSerialization.jsonObject(with: Data(original.utf8)) as? NSDictionary)
        let reencodedObject = try #require(try JSONSerialization.jsonObject(with: reencoded) as? NSDictionary)
        #expect(reencodedObject == originalObject)
        #expect(try EventEnvelope(jsonData: reencoded) == envelope)
        let text = String(decoding: reencoded, as: UTF8.self)
        #expect(text.contains(#""big":123456789012345678901234567890"#))
        #expect(text.contains(#""fee_rate":0.029"#))
        #expect(text.contains(#""note":"über / ok""#))
    }

    @Test(
        "malformed envelopes are refused",
        arguments: [
            ("id", #""nope""#),
            ("type", #""""#),
            ("version", "0"),
            ("sequence", #""1""#),
            ("occurred_at", #""yesterday""#),
        ])
    func malformed(field: String, value: String) throws {
        var object: [String: String] = [
            "id": #""11111111-2222-4333-8444-555555555555""#, "type": #""booking.expired""#, "version": "1",
            "occurred_at": #""2026-11-21T08:44:21Z""#, "aggregate_id": #""a""#, "sequence": "1",
            "correlation_id": #""c""#, "causation_id": "null", "producer": #""booking""#, "data": "{}",
        ]
        let valid = "{" + object.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        #expect(try EventEnvelope(jsonData: Data(valid.utf8)).type == "booking.expired")
        object[field] = value
        let json = "{" + object.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        #expect(throws: DecodingError.self) { try EventEnvelope(jsonData: Data(json.utf8)) }
    }

    @Test("a follow-up event carries the cause's correlation id and takes its id as causation")
    func causedBy() throws {
        let cause = try EventEnvelope(
            event: BookingExpired(bookingID: Sample.bookingID), id: envelopeID, occurredAt: Sample.instant,
            sequence: 4, correlationID: "req-77", causationID: nil, producer: .booking
        )
        let refund = RefundRequested(
            refundID: Sample.refundID, bookingID: nil, providerRef: "pi_late", amount: Money(amount: 10, currency: .eur),
            reason: .unknownBooking, idempotencyKey: "k"
        )
        let followUp = try EventEnvelope(event: refund, causedBy: cause, occurredAt: Sample.later, sequence: 1, producer: .booking)
        #expect(followUp.correlationID == "req-77")
        #expect(followUp.causationID == "11111111-2222-4333-8444-555555555555")
        #expect(followUp.aggregateID == "pi_late")
        #expect(followUp.id != cause.id)
    }
}
