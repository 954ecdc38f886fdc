import Foundation
import Testing

@testable import SharedModel

/// ``JSONValueDecoder`` gives what `JSONDecoder.platform` gives: its direct path's every success is
/// `JSONDecoder`'s value, and everything else is `JSONDecoder`'s answer.
@Suite("JSONValueDecoder: JSONDecoder.platform's answers, decoded from the tree")
struct JSONValueDecoderTests {
    struct Nested: Decodable, Equatable {
        let x: Int
        let y: [Int8]
    }

    /// Optional members of every kind the services' request bodies and events hold.
    struct Shape: Decodable, Equatable {
        let a: Int?
        let b: String?
        let c: [String]?
        let d: Bool?
        let e: Nested?
        let x: UInt8?
        let y: [String: Int64]?
    }

    /// A request body: every member required.
    struct Required: Decodable, Equatable {
        let holdID: String
        let customerID: String
        let seats: [String]

        enum CodingKeys: String, CodingKey {
            case holdID = "hold_id"
            case customerID = "customer_id"
            case seats = "seat_ids"
        }
    }

    /// Swallows the refusal of a floating-point value and would answer 0 on the direct path.
    struct Swallowing: Decodable, Equatable {
        let value: Double

        enum CodingKeys: String, CodingKey { case value }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            value = (try? container.decode(Double.self, forKey: .value)) ?? 0
        }
    }

    struct Dated: Decodable, Equatable {
        let at: Date
        let url: URL?
        let amount: Decimal?
    }

    /// The outcome of decoding: the value, or that it failed.
    private enum Outcome<Value: Equatable>: Equatable {
        case value(Value)
        case failed
    }

    private func outcome<Value: Equatable>(_ decode: () throws -> Value) -> Outcome<Value> {
        (try? decode()).map(Outcome.value) ?? .failed
    }

    /// Decodes `bytes` as `Value` both ways and checks they agree, and that a direct success is
    /// JSONDecoder's value; returns whether the direct path decided.
    @discardableResult
    private func agree<Value: Decodable & Equatable>(_ type: Value.Type, _ bytes: Data, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let expected = outcome { try JSONDecoder.platform.decode(type, from: bytes) }
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(outcome { try JSONValueDecoder.decode(type, from: bytes) } == expected, "\(Value.self) from \(text)", sourceLocation: sourceLocation)
        guard let json = JSONValue(fastParsing: bytes), let direct = JSONValueDecoder.directly(type, from: json) else { return false }
        #expect(Outcome.value(direct) == expected, "direct \(Value.self) from \(text)", sourceLocation: sourceLocation)
        return true
    }

    private func agreeOnEveryType(_ bytes: Data) -> Int {
        [
            agree(JSONValue.self, bytes), agree([String: JSONValue].self, bytes), agree([JSONValue].self, bytes), agree([Int].self, bytes),
            agree([Int8].self, bytes), agree([UInt8].self, bytes), agree([String].self, bytes), agree([Bool].self, bytes),
            agree([String?].self, bytes), agree([Int?].self, bytes), agree([String: Int].self, bytes), agree([String: String].self, bytes),
            agree(Int.self, bytes), agree(Int64.self, bytes), agree(UInt64.self, bytes), agree(Int8.self, bytes), agree(String.self, bytes),
            agree(Bool.self, bytes), agree(Bool?.self, bytes), agree(String?.self, bytes), agree(Shape.self, bytes), agree([Shape].self, bytes),
            agree(Required.self, bytes), agree(Nested.self, bytes), agree(Double.self, bytes),
        ].filter { $0 }.count
    }

    /// A random value whose objects use the shapes' keys, so the typed shapes decode some of them.
    private static func shaped(depth: Int, _ random: inout SplitMix) -> JSONValue {
        let keys = ["a", "b", "c", "d", "e", "x", "y", "hold_id", "customer_id", "seat_ids", "other"]
        switch random.next() % (depth < 3 ? 9 : 6) {
        case 0: return .null
        case 1: return .bool(random.next() % 2 == 0)
        case 2: return .integer([0, 1, -1, 127, 128, 255, 256, -129, Int64.max, Int64.min][Int(random.next() % 10)])
        case 3: return .integer(Int64(random.next() % 1_000))
        case 4, 5: return .string(FastJSONTests.randomString(&random))
        case 6: return .array((0..<random.next() % 4).map { _ in shaped(depth: depth + 1, &random) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<random.next() % 6 { members[keys[Int(random.next() % UInt64(keys.count))]] = shaped(depth: depth + 1, &random) }
            return .object(members)
        }
    }

    @Test("random documents decode into every shape as JSONDecoder decodes them, and the direct path decides a share of them itself")
    func randomDocuments() throws {
        var random = SplitMix(seed: 23)
        var decided = 0
        var total = 0
        for round in 0..<1_000 {
            let value = round % 3 == 0 ? FastJSONTests.randomValue(depth: 0, &random) : Self.shaped(depth: 0, &random)
            let bytes = Data(FastJSONTests.write(value, &random))
            decided += agreeOnEveryType(bytes)
            total += 25
        }
        // Documents the direct path decides, so the comparison above is not only of JSONDecoder with
        // itself.
        #expect(decided > total / 10, "the direct path decided \(decided) of \(total)")
    }

    @Test("request bodies: valid, a member missing, null, of the wrong type, extra members, a key twice, a fraction, a BOM, empty")
    func requestBodies() {
        let bodies = [
            #"{"hold_id":"h_1","customer_id":"c-1","seat_ids":["A-1","A-2"]}"#,
            #"{"hold_id":"h_1","customer_id":"c-1","seat_ids":["A-1"],"extra":{"deep":[1,2.5]}}"#,
            #"{"hold_id":"h_1","seat_ids":[]}"#, #"{"hold_id":null,"customer_id":"c","seat_ids":[]}"#,
            #"{"hold_id":1,"customer_id":"c","seat_ids":[]}"#, #"{"hold_id":"h","customer_id":"c","seat_ids":"A-1"}"#,
            #"{"hold_id":"h","hold_id":"g","customer_id":"c","seat_ids":[]}"#, #"{"hold_id":"h","customer_id":"c","seat_ids":[1.0]}"#,
            "\u{FEFF}{\"hold_id\":\"h\",\"customer_id\":\"c\",\"seat_ids\":[]}", "", "null", "[]",
            #"{"hold_id":"h\ud800","customer_id":"c","seat_ids":[]}"#,
        ]
        for body in bodies {
            agree(Required.self, Data(body.utf8))
            agree(Shape.self, Data(body.utf8))
        }
        #expect(agree(Required.self, Data(bodies[0].utf8)), "a valid body is decided by the direct path")
    }

    @Test("integers: the edges of each width, and numbers the direct path leaves to JSONDecoder")
    func integers() {
        for text in [
            "0", "-0", "127", "128", "-128", "-129", "255", "256", "-1", "9223372036854775807", "-9223372036854775808", "1.0", "1e2", "true", "\"1\"",
        ] {
            let bytes = Data("[\(text)]".utf8)
            agree([Int8].self, bytes)
            agree([UInt8].self, bytes)
            agree([Int].self, bytes)
            agree([UInt64].self, bytes)
            agree([Double].self, bytes)
        }
    }

    @Test("a refusal the type swallows still sends the input to JSONDecoder")
    func swallowedRefusal() throws {
        let bytes = Data(#"{"value": 3}"#.utf8)
        #expect(try JSONValueDecoder.decode(Swallowing.self, from: bytes).value == 3)
        #expect(try JSONDecoder.platform.decode(Swallowing.self, from: bytes).value == 3)
        #expect(JSONValueDecoder.directly(Swallowing.self, from: ["value": 3]) == nil)
    }

    @Test("dates by the platform's RFC 3339 rule; URL and Decimal through JSONDecoder")
    func dates() throws {
        for body in [
            #"{"at":"2026-12-05T21:00:00Z"}"#, #"{"at":"2026-12-05T22:00:00.123+01:00"}"#, #"{"at":"2026-12-05T21:00:00"}"#,
            #"{"at":"yesterday"}"#, #"{"at":1733432400}"#, #"{"at":"2026-12-05T21:00:00Z","url":"https://example.com/a","amount":12}"#,
        ] {
            agree(Dated.self, Data(body.utf8))
        }
        #expect(agree(Dated.self, Data(#"{"at":"2026-12-05T21:00:00Z"}"#.utf8)))
    }

    @Test("every event of the catalogue decodes from its envelope's data as through the bytes")
    func events() throws {
        for envelope in try FastJSONTests.envelopes() {
            #expect(try JSONValueDecoder.decode(JSONValue.self, from: envelope.data) == envelope.data)
        }
        let requested = BookingRequested(
            bookingID: BookingID(), eventID: EventID(), hostID: try HostID("host_1"), customerID: try CustomerID("c-1"),
            seatIDs: [try SeatID("A-1")], amount: Money(amount: 1_250, currency: .eur), paymentDueAt: Date(timeIntervalSince1970: 1_800_000_000))
        let data = try JSONValueEncoder.encode(requested)
        #expect(JSONValueDecoder.directly(BookingRequested.self, from: data) == requested)
        #expect(try JSONDecoder.platform.decode(BookingRequested.self, from: JSONEncoder.platform.encode(data)) == requested)
    }
}
