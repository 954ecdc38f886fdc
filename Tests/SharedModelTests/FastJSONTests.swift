import Foundation
import SharedModel
import Testing

@Suite("Direct JSON reading and writing of envelopes")
struct FastJSONTests {
    /// Every ASCII control character, quotes, backslashes, slashes, DEL, non-ASCII text and emoji.
    static let awkward = String(decoding: (0..<0x80).map { UInt8($0) }, as: UTF8.self) + "\"\\/é€😀\u{2028}"

    static let data: JSONValue = [
        "text": .string(awkward), "empty": "", "null": nil, "yes": true, "no": false,
        "integers": [0, -1, .integer(Int64.max), .integer(Int64.min)],
        "decimal": .number(Decimal(string: "12.345")!), "big": .number(Decimal(string: "123456789012345678901234567890")!),
        "nested": ["b": [["z": 1, "a": 2]], "a": [], "é": .object([:]), "Z": "upper"],
        .init(stringLiteral: awkward): "awkward key",
    ]

    static func envelopes() throws -> [EventEnvelope] {
        let at = try RFC3339.date(from: "2026-11-21T10:00:00.123+01:00")
        return [
            EventEnvelope(
                type: "payment.succeeded", version: 1, occurredAt: at, aggregateID: "pi_1", sequence: 7, correlationID: awkward,
                causationID: nil, producer: .paymentsWebhook, data: data),
            EventEnvelope(
                type: "x.y", version: 3, occurredAt: Date(timeIntervalSince1970: 0), aggregateID: "", sequence: Int64.max,
                correlationID: "c", causationID: "cause \u{1}", producer: "another-producer", data: [1, "two", nil]),
        ]
    }

    @Test("jsonData() is byte for byte what JSONEncoder.platform writes")
    func writerMatchesEncoder() throws {
        for envelope in try Self.envelopes() {
            let encoded = try JSONEncoder.platform.encode(envelope)
            #expect(try envelope.jsonData() == encoded, "\(String(decoding: encoded, as: UTF8.self))")
            var bytes: [UInt8] = []
            envelope.data.writeJSON(to: &bytes)
            #expect(Data(bytes) == (try JSONEncoder.platform.encode(envelope.data)))
        }
    }

    @Test("init(jsonData:) reads what it writes, and agrees with the decoder on everything else")
    func readerMatchesDecoder() throws {
        for envelope in try Self.envelopes() {
            let bytes = try envelope.jsonData()
            #expect(try EventEnvelope(jsonData: bytes) == envelope)
            #expect(try EventEnvelope(jsonData: bytes) == JSONDecoder.platform.decode(EventEnvelope.self, from: bytes))
        }
        let valid = try #require(try Self.envelopes().last).jsonBytes()
        let text = String(decoding: valid, as: UTF8.self)
        // What the decoder refuses is refused: an empty type, version 0, a naive timestamp, a bad id.
        for broken in [
            text.replacingOccurrences(of: #""type":"x.y""#, with: #""type":"""#),
            text.replacingOccurrences(of: #""version":3"#, with: #""version":0"#),
            text.replacingOccurrences(of: "1970-01-01T00:00:00.000Z", with: "1970-01-01T00:00:00"),
            text.replacingOccurrences(of: #""id":""#, with: #""id":"x"#),
            text.replacingOccurrences(of: #""sequence":"#, with: #""sequence":1.5,"s":"#),
        ] {
            #expect(broken != text)
            #expect(throws: (any Error).self, "\(broken)") { try EventEnvelope(jsonData: Data(broken.utf8)) }
        }
        // An absent causation id reads as nil, as with the decoder.
        let absent = text.replacingOccurrences(of: #""causation_id":"cause \u0001","#, with: "")
        #expect(absent != text)
        #expect(try EventEnvelope(jsonData: Data(absent.utf8)).causationID == nil)
    }

    @Test("the fast parser keeps integers and declines numbers it would not keep exactly")
    func fastParserExactness() {
        #expect(
            JSONValue(fastParsing: Data(#"{"a": 9223372036854775807, "b": true, "c": [null, "x"]}"#.utf8)) == [
                "a": .integer(Int64.max), "b": true, "c": [nil, "x"],
            ])
        #expect(JSONValue(fastParsing: Data(#"{"a": 1.5}"#.utf8)) == nil)
        #expect(JSONValue(fastParsing: Data(#"{"a": 1e3}"#.utf8)) == nil)
        #expect(JSONValue(fastParsing: Data(#"{"a": 9223372036854775808}"#.utf8)) == nil)
        #expect(JSONValue(fastParsing: Data("{".utf8)) == nil)
    }
}
