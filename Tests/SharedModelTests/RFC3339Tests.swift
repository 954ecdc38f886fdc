import Foundation
import SharedModel
import Testing

@Suite("RFC 3339")
struct RFC3339Tests {
    @Test("a naive date-time without offset is refused")
    func naiveRejected() {
        #expect(throws: RFC3339Error.missingOffset) { try RFC3339.date(from: "2026-03-08T02:30:00") }
        #expect(throws: RFC3339Error.missingOffset) { try RFC3339.date(from: "2026-03-08T02:30:00.123") }
    }

    @Test("an offset is applied to get the UTC instant")
    func offsetParsed() throws {
        // 2026-03-08T12:30:00Z, computed independently.
        #expect(try RFC3339.date(from: "2026-03-08T07:30:00-05:00") == Date(timeIntervalSince1970: 1_772_973_000))
        #expect(try RFC3339.date(from: "2026-07-01T00:00:00+05:30") == Date(timeIntervalSince1970: 1_782_844_200))
    }

    @Test(
        "the same instant in different notations parses equal",
        arguments: [
            "2026-11-21T08:44:21.123Z",
            "2026-11-21T08:44:21.123z",
            "2026-11-21t08:44:21.123Z",
            "2026-11-21T10:44:21.123+02:00",
            "2026-11-21T03:44:21.123-05:00",
            "2026-11-21T08:44:21.123+00:00",
            "2026-11-21T08:44:21.123-00:00",
            "2026-11-21T08:44:21.123000Z",
            "2026-11-21T08:44:21.123000999Z",
        ])
    func sameInstant(text: String) throws {
        #expect(try RFC3339.date(from: text) == Date(timeIntervalSince1970: 1_795_250_661.123))
    }

    @Test("fraction digits are optional")
    func noFraction() throws {
        #expect(try RFC3339.date(from: "2026-03-08T12:30:00Z") == Date(timeIntervalSince1970: 1_772_973_000))
        #expect(try RFC3339.date(from: "2026-03-08T12:30:00.5Z") == Date(timeIntervalSince1970: 1_772_973_000.5))
    }

    @Test(
        "malformed or out-of-range timestamps are refused",
        arguments: [
            ("", RFC3339Error.malformed),
            ("2026-03-08", .malformed),
            ("2026-03-08 12:30:00Z", .malformed),
            ("2026-3-08T12:30:00Z", .malformed),
            ("2026-03-08T12:30Z", .malformed),
            ("2026-03-08T12:30:00.Z", .malformed),
            ("2026-03-08T12:30:00+0500", .malformed),
            ("2026-03-08T12:30:00+05", .malformed),
            ("2026-03-08T12:30:00Z ", .malformed),
            ("2026-03-08T12:30:00 Z", .malformed),
            ("2026-03-08T12:30:00UTC", .malformed),
            ("2026-13-08T12:30:00Z", .fieldOutOfRange),
            ("2026-00-08T12:30:00Z", .fieldOutOfRange),
            ("2026-02-29T12:30:00Z", .fieldOutOfRange),
            ("2026-04-31T12:30:00Z", .fieldOutOfRange),
            ("2026-03-08T24:00:00Z", .fieldOutOfRange),
            ("2026-03-08T12:60:00Z", .fieldOutOfRange),
            ("2026-03-08T12:30:61Z", .fieldOutOfRange),
            ("2026-03-08T12:30:00+24:00", .fieldOutOfRange),
            ("2026-03-08T12:30:00+05:60", .fieldOutOfRange),
        ])
    func refused(text: String, error: RFC3339Error) {
        #expect(throws: error) { try RFC3339.date(from: text) }
    }

    @Test("leap years and calendar edges")
    func calendar() throws {
        #expect(try RFC3339.date(from: "2028-02-29T00:00:00Z") == Date(timeIntervalSince1970: 1_835_395_200))
        #expect(try RFC3339.date(from: "0001-01-01T00:00:00Z") == Date(timeIntervalSince1970: -62_135_596_800))
        #expect(try RFC3339.date(from: "1969-12-31T23:59:59.5Z") == Date(timeIntervalSince1970: -0.5))
        #expect(try RFC3339.date(from: "2016-12-31T23:59:60Z") == RFC3339.date(from: "2017-01-01T00:00:00Z"))
    }

    @Test(
        "output is UTC with milliseconds",
        arguments: [
            (1_795_250_661.123, "2026-11-21T08:44:21.123Z"),
            (1_772_973_000, "2026-03-08T12:30:00.000Z"),
            (0, "1970-01-01T00:00:00.000Z"),
            (-0.5, "1969-12-31T23:59:59.500Z"),
            (1_795_250_661.1236, "2026-11-21T08:44:21.124Z"),
            (253_402_300_799.999, "9999-12-31T23:59:59.999Z"),
            (1_835_395_200, "2028-02-29T00:00:00.000Z"),
            (-62_167_219_200, "0000-01-01T00:00:00.000Z"),
            (-1e20, "0000-01-01T00:00:00.000Z"),
            (1e20, "9999-12-31T23:59:59.999Z"),
            (-61_851_574_800.009, "0010-01-01T06:59:59.991Z"),
        ])
    func output(seconds: Double, expected: String) {
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: seconds)) == expected)
    }

    @Test("millisecond instants survive a format/parse round trip exactly")
    func roundTrip() throws {
        var milliseconds: Int64 = 1_700_000_000_000
        for _ in 0..<2_000 {
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            #expect(try RFC3339.date(from: RFC3339.string(from: date)) == date)
            milliseconds += 7_919_777
        }
    }

    @Test("the platform coders use RFC 3339 for Date values")
    func platformCoders() throws {
        struct Stamp: Codable, Equatable { let at: Date }
        let json = #"{"at":"2026-03-08T07:30:00-05:00"}"#
        let stamp = try JSONDecoder.platform.decode(Stamp.self, from: Data(json.utf8))
        #expect(stamp.at == Date(timeIntervalSince1970: 1_772_973_000))
        #expect(String(decoding: try JSONEncoder.platform.encode(stamp), as: UTF8.self) == #"{"at":"2026-03-08T12:30:00.000Z"}"#)
        #expect(throws: DecodingError.self) {
            try JSONDecoder.platform.decode(Stamp.self, from: Data(#"{"at":"2026-03-08T07:30:00"}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder.platform.decode(Stamp.self, from: Data(#"{"at":1772973000}"#.utf8))
        }
    }
}
