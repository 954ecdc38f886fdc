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

    @Test("the parser declines what it does not decide, and reads the edges it accepts")
    func fastParserEdges() {
        for declined in [
            #"{"a": 1, "a": 2}"#, #"["\ud800"]"#, #"["\udc00"]"#, #"["\ud800\u0041"]"#, "[01]", "[+1]", "[-]", "[1.]", "[-01]",
            "[\"tab\tinside\"]", "[\"x\" \"y\"]", "[1,]", #"{"a":1,}"#, "{,}", "[tru]", "[nul]", "[1] x", "\u{FEFF}[1]", "", " ",
            #"["\x"]"#, #"["\u12G4"]"#, #"{"a" 1}"#, #"{1: 2}"#, "[-9223372036854775809]", "[18446744073709551616]",
            String(repeating: "[", count: 513) + String(repeating: "]", count: 513),
        ] {
            #expect(JSONValue(fastParsing: Data(declined.utf8)) == nil, "\(declined)")
        }
        #expect(JSONValue(fastParsing: Data([0x5B, 0x22, 0xC3, 0x22, 0x5D])) == nil, "invalid UTF-8")
        #expect(JSONValue(fastParsing: Data([0x5B, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x5D])) == nil, "a surrogate in UTF-8")
        let deep = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(JSONValue(fastParsing: Data(deep.utf8)) != nil)
        #expect(
            JSONValue(fastParsing: Data(" \t\r\n[-0, -9223372036854775808, \"\\ud83d\\ude00\\u00e9\\/\\b\\f\\n\\r\\t\\u0000\", {}, []] ".utf8))
                == [0, .integer(Int64.min), "😀é/\u{8}\u{C}\n\r\t\u{0}", .object([:]), []])
        #expect(JSONValue(fastParsing: Data("true".utf8)) == true)
        #expect(JSONValue(fastParsing: Data(#""e\u0301""#.utf8)) == "e\u{301}")
    }

    @Test("whatever the parser accepts, JSONDecoder reads as the same value", arguments: 0..<4)
    func fastParserAgreesWithFoundation(seed: UInt64) {
        var random = SplitMix(seed: seed)
        var accepted = 0
        for _ in 0..<1_500 {
            let value = Self.randomValue(depth: 0, &random)
            let text = Self.write(value, &random)
            // Well-formed text of values it keeps exactly is never declined.
            #expect(JSONValue(fastParsing: Data(text)) == value, "\(String(decoding: text, as: UTF8.self))")
            // Mutants: a byte changed, dropped or duplicated, or the text cut short.
            for _ in 0..<4 {
                var mutant = text
                let at = Int(random.next() % UInt64(mutant.count))
                switch random.next() % 4 {
                case 0: mutant[at] = Self.alphabet[Int(random.next() % UInt64(Self.alphabet.count))]
                case 1: mutant.remove(at: at)
                case 2: mutant.insert(mutant[at], at: at)
                default: mutant.removeSubrange(at...)
                }
                guard let fast = JSONValue(fastParsing: Data(mutant)) else { continue }
                accepted += 1
                #expect(fast == (try? JSONDecoder.platform.decode(JSONValue.self, from: Data(mutant))), "\(String(decoding: mutant, as: UTF8.self))")
            }
        }
        #expect(accepted > 100, "the mutants exercised the accepting side too")
    }

    /// Bytes the mutants draw from: JSON's structure and escapes, digits, and bytes that break UTF-8.
    static let alphabet = Array(#"{}[]:,"\/-+.eE0129 tfnu"#.utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xED, 0xFF]

    static func randomValue(depth: Int, _ random: inout SplitMix) -> JSONValue {
        switch random.next() % (depth < 4 ? 8 : 5) {
        case 0: return .null
        case 1: return .bool(random.next() % 2 == 0)
        case 2:
            let magnitude = [Int64(random.next() % 10), Int64(random.next() % 100_000), Int64(bitPattern: random.next())]
            return .integer(magnitude[Int(random.next() % 3)])
        case 3, 4: return .string(randomString(&random))
        case 5: return .array((0..<random.next() % 4).map { _ in randomValue(depth: depth + 1, &random) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<random.next() % 4 { members[randomString(&random)] = randomValue(depth: depth + 1, &random) }
            return .object(members)
        }
    }

    static func randomString(_ random: inout SplitMix) -> String {
        let pieces: [String] = ["a", "Z", "0", " ", "\"", "\\", "/", "\u{0}", "\u{1F}", "\n", "é", "e\u{301}", "€", "😀", "\u{2028}", "\u{7F}"]
        return (0..<random.next() % 6).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }.joined()
    }

    /// `value` as JSON text, with random whitespace and random escaping (some characters as `\\u`
    /// escapes, astral ones as surrogate pairs).
    static func write(_ value: JSONValue, _ random: inout SplitMix) -> [UInt8] {
        var output: [UInt8] = []
        func space() {
            for _ in 0..<random.next() % 3 { output.append([0x20, 0x09, 0x0A, 0x0D][Int(random.next() % 4)]) }
        }
        func string(_ text: String) {
            output.append(UInt8(ascii: "\""))
            for scalar in text.unicodeScalars {
                let escape = random.next() % 4 == 0
                if scalar.value < 0x20 || scalar == "\"" || scalar == "\\" || (escape && scalar.value > 0x7F) {
                    for unit in String(scalar).utf16 { output.append(contentsOf: String(format: "\\u%04x", unit).utf8) }
                } else if escape && scalar == "/" {
                    output.append(contentsOf: #"\/"#.utf8)
                } else {
                    output.append(contentsOf: String(scalar).utf8)
                }
            }
            output.append(UInt8(ascii: "\""))
        }
        func emit(_ value: JSONValue) {
            space()
            switch value {
            case .null: output.append(contentsOf: "null".utf8)
            case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
            case .integer(let number): output.append(contentsOf: String(number).utf8)
            case .number(let number): output.append(contentsOf: number.description.utf8)
            case .string(let text): string(text)
            case .array(let elements):
                output.append(UInt8(ascii: "["))
                for (index, element) in elements.enumerated() {
                    if index > 0 { output.append(UInt8(ascii: ",")) }
                    emit(element)
                }
                space()
                output.append(UInt8(ascii: "]"))
            case .object(let members):
                output.append(UInt8(ascii: "{"))
                for (index, (key, member)) in members.enumerated() {
                    if index > 0 { output.append(UInt8(ascii: ",")) }
                    space()
                    string(key)
                    space()
                    output.append(UInt8(ascii: ":"))
                    emit(member)
                }
                space()
                output.append(UInt8(ascii: "}"))
            }
            space()
        }
        emit(value)
        return output
    }
}

/// A small seeded generator (SplitMix64), so a failing case can be run again.
struct SplitMix: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
