import Foundation
import SharedModel
import Testing

/// ``JSONValueEncoder`` gives what `JSONEncoder.platform` and parsing its output give.
@Suite("JSONValueEncoder: the same JSON as JSONEncoder.platform, without the bytes")
struct JSONValueEncoderTests {
    private struct Sample: Encodable {
        var text = "a \"quoted\" / slash é"
        var integer: Int64 = -42
        var small: UInt8 = 7
        var flag = true
        var missing: String? = nil
        var present: Int? = 3
        var date = Date(timeIntervalSince1970: 1_700_000_000.123)
        var list: [[Int]] = [[1, 2], [], [3]]
        var nested = ["b": ["x": 1], "a": [:]]
        var decimal = Decimal(string: "12.50")
        var double = 0.25
        var data = Data([0, 1, 2, 255])
        var url = URL(string: "https://example.com/a?b=c")
        var json: JSONValue = ["k": [1, "two", nil, true]]
    }

    private func viaBytes(_ value: some Encodable) throws -> JSONValue {
        try JSONDecoder.platform.decode(JSONValue.self, from: JSONEncoder.platform.encode(value))
    }

    @Test("values of every kind, optionals, nesting, dates, data, URLs and JSONValue itself")
    func sameAsJSONEncoder() throws {
        let sample = Sample()
        #expect(try JSONValueEncoder.encode(sample) == (try viaBytes(sample)))
        #expect(try JSONValueEncoder.encode(sample)["missing"] == nil, "encodeIfPresent leaves the key out")
        #expect(try JSONValueEncoder.encode([1, 2, 3]) == [1, 2, 3])
        #expect(try JSONValueEncoder.encode("top") == "top")
    }

    @Test("every event of the catalogue encodes as through the bytes")
    func events() throws {
        let details = DisputeDetails(
            paymentEventID: try PaymentEventID("evt_1"), provider: "stripe", disputeRef: "dp_1", providerRef: "pi_1", bookingID: BookingID(),
            amount: Money(amount: 4_500, currency: .eur), reason: nil, status: "lost", providerCreatedAt: Date())
        let events: [any DomainEvent] = [
            PaymentDisputed(dispute: details), PaymentDisputeClosed(dispute: details, outcome: .lost),
            RefundSucceeded(refundID: nil, bookingID: BookingID(), providerRef: "pi_2", amount: Money(amount: 1, currency: .jpy)),
            EventCancelled(eventID: EventID(), hostID: try HostID("host_1"), reason: "rain", cancelledAt: Date(), bookings: 3),
        ]
        for event in events {
            #expect(try JSONValueEncoder.encode(event) == (try viaBytes(event)), "\(type(of: event).eventType)")
        }
    }

    @Test("jsonBytes is byte for byte what JSONEncoder.platform writes: the sample, the events, random values")
    func bytesSameAsJSONEncoder() throws {
        let sample = Sample()
        #expect(try JSONValueEncoder.jsonBytes(sample) == Array(try JSONEncoder.platform.encode(sample)))
        for event in try FastJSONTests.envelopes() {
            #expect(try JSONValueEncoder.jsonBytes(event) == Array(try JSONEncoder.platform.encode(event)))
        }
        var random = SplitMix(seed: 19)
        for _ in 0..<500 {
            // Strings of quotes, backslashes, control characters, slashes and multi-byte characters.
            let value = FastJSONTests.randomValue(depth: 0, &random)
            let expected = Array(try JSONEncoder.platform.encode(value))
            #expect(try JSONValueEncoder.jsonBytes(value) == expected, "\(String(decoding: expected, as: UTF8.self))")
        }
    }

    /// Encodes a key twice, continues a nested container under the same key, and uses super encoders.
    private struct Repeats: Encodable {
        enum Keys: String, CodingKey { case a, b, nested, list, base }
        enum Inner: String, CodingKey { case x, y }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode("first", forKey: .b)
            try container.encode(1, forKey: .a)
            try container.encode("second", forKey: .b)
            var nested = container.nestedContainer(keyedBy: Inner.self, forKey: .nested)
            try nested.encode(1, forKey: .x)
            var again = container.nestedContainer(keyedBy: Inner.self, forKey: .nested)
            try again.encode(2, forKey: .y)
            try again.encode(3, forKey: .x)
            var list = container.nestedUnkeyedContainer(forKey: .list)
            try list.encode(BookingID(UUID(uuidString: "00000000-0000-0000-0000-000000000001")!))
            var element = list.nestedContainer(keyedBy: Inner.self)
            try element.encode(Date(timeIntervalSince1970: 0), forKey: .x)
            try list.encode(Optional<String>.none)
            try container.encode(["z": 1, "y": 2], forKey: .base)
            try ["kept": true].encode(to: container.superEncoder())
        }
    }

    /// Records the coding path it is encoded at, then fails there.
    private struct Deep: Encodable {
        enum Keys: String, CodingKey { case outer }
        enum Inner: String, CodingKey { case value }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode([["value": Double.nan]], forKey: .outer)
        }
    }

    @Test("a repeated key keeps its last value, a second nested container continues the first, as JSONEncoder does")
    func repeatedKeys() throws {
        let bytes = try JSONValueEncoder.jsonBytes(Repeats())
        #expect(bytes == Array(try JSONEncoder.platform.encode(Repeats())), "\(String(decoding: bytes, as: UTF8.self))")
        #expect(try JSONValueEncoder.encode(Repeats()) == (try viaBytes(Repeats())))
        #expect(try JSONValueEncoder.encode(Repeats())["b"] == "second")
        #expect(try JSONValueEncoder.encode(Repeats())["nested"] == ["x": 3, "y": 2])
    }

    @Test("an error names the coding path of the value that failed")
    func errorPath() throws {
        do {
            _ = try JSONValueEncoder.jsonBytes(Deep())
            Issue.record("a NaN was encoded")
        } catch EncodingError.invalidValue(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["outer", "Index 0", "value"])
            #expect(context.codingPath[1].intValue == 0)
        }
    }

    @Test("an unsigned integer over Int64.max and a non-finite number are refused")
    func refusals() {
        #expect(throws: EncodingError.self) { try JSONValueEncoder.encode([UInt64.max]) }
        #expect(throws: EncodingError.self) { try JSONValueEncoder.encode(["x": Double.infinity]) }
    }
}
