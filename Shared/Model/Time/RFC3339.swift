import Foundation

/// RFC 3339 timestamps, the only time format on the wire.
///
/// - Output (``string(from:)``) is always UTC with a `Z` and exactly three fraction digits:
///   `2026-11-21T08:44:21.123Z`. The instant is rounded to the nearest millisecond.
/// - Input (``date(from:)``) accepts the RFC 3339 `date-time` production: `T` or `t`, any
///   number of fraction digits or none, and an explicit offset `Z`/`z` or `+hh:mm`/`-hh:mm`.
///   A naive date-time without an offset is refused: its instant would depend on the reader's
///   time zone.
public enum RFC3339 {
    /// The earliest instant ``string(from:)`` renders faithfully: 0000-01-01T00:00:00Z.
    static let minimumMilliseconds: Int64 = CivilDate.daysSinceEpoch(year: 0, month: 1, day: 1) * 86_400_000
    /// The latest instant ``string(from:)`` renders faithfully: 9999-12-31T23:59:59.999Z.
    static let maximumMilliseconds: Int64 = CivilDate.daysSinceEpoch(year: 10_000, month: 1, day: 1) * 86_400_000 - 1

    /// Renders `date` as UTC with millisecond precision, e.g. `2026-11-21T08:44:21.123Z`.
    /// Instants outside years 0000-9999 (and non-finite dates) are clamped to that range, since
    /// RFC 3339 has four-digit years only.
    public static func string(from date: Date) -> String {
        let milliseconds = clampedMilliseconds(date.timeIntervalSince1970 * 1000)
        var days = milliseconds / 86_400_000
        var millisecondOfDay = milliseconds % 86_400_000
        if millisecondOfDay < 0 {
            days -= 1
            millisecondOfDay += 86_400_000
        }
        let (year, month, day) = CivilDate.date(daysSinceEpoch: days)
        let hour = millisecondOfDay / 3_600_000
        let minute = millisecondOfDay / 60_000 % 60
        let second = millisecondOfDay / 1000 % 60
        let millisecond = millisecondOfDay % 1000
        // Written as bytes into the template: the interpolation of seven padded strings was 1% of the
        // booking service's CPU under the holds pair (every 201 names its hold's expiry).
        let template: StaticString = "0000-00-00T00:00:00.000Z"
        let fields: [(value: Int64, end: Int)] = [
            (year, 4), (month, 7), (day, 10), (hour, 13), (minute, 16), (second, 19), (millisecond, 23),
        ]
        return String(unsafeUninitializedCapacity: template.utf8CodeUnitCount) { out in
            for index in 0..<template.utf8CodeUnitCount { out[index] = template.utf8Start[index] }
            for field in fields {
                // The field's digits end before `end`; the template's zeros pad it.
                var value = field.value
                var position = field.end - 1
                while value > 0 {
                    out[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                    position -= 1
                }
            }
            return template.utf8CodeUnitCount
        }
    }

    /// Renders `date` as the wall-clock time in `timeZone` with that zone's offset at that instant,
    /// e.g. `2027-03-14T03:30:00.000-04:00` for America/New_York just after the spring change.
    /// Offsets are whole minutes (a historical offset with seconds is rounded down to the minute).
    public static func string(from date: Date, in timeZone: TimeZone) -> String {
        let offsetMinutes = Int64(timeZone.secondsFromGMT(for: date)) / 60
        let wallClock = string(from: date.addingTimeInterval(TimeInterval(offsetMinutes * 60)))
        guard offsetMinutes != 0 else { return String(wallClock.dropLast()) + "+00:00" }
        let sign = offsetMinutes < 0 ? "-" : "+"
        let magnitude = abs(offsetMinutes)
        return String(wallClock.dropLast()) + sign + pad(magnitude / 60, 2) + ":" + pad(magnitude % 60, 2)
    }

    /// Parses an RFC 3339 `date-time` with an explicit offset into the instant it denotes.
    ///
    /// Fraction digits beyond microseconds are truncated (`Date` cannot hold more). A leap second
    /// (`:60`) is accepted and denotes the first instant of the next minute, as POSIX time does.
    /// Throws ``RFC3339Error/missingOffset`` for naive date-times such as `2026-03-08T02:30:00`.
    public static func date(from string: String) throws(RFC3339Error) -> Date {
        var reader = ByteReader(Array(string.utf8))
        let year = try reader.number(digits: 4)
        try reader.expect(UInt8(ascii: "-"))
        let month = try reader.number(digits: 2)
        try reader.expect(UInt8(ascii: "-"))
        let day = try reader.number(digits: 2)
        try reader.expect(UInt8(ascii: "T"), or: UInt8(ascii: "t"))
        let hour = try reader.number(digits: 2)
        try reader.expect(UInt8(ascii: ":"))
        let minute = try reader.number(digits: 2)
        try reader.expect(UInt8(ascii: ":"))
        let second = try reader.number(digits: 2)

        var microseconds: Int64 = 0
        if reader.peek == UInt8(ascii: ".") {
            reader.advance()
            var count = 0
            while let digit = reader.digit() {
                if count < 6 { microseconds = microseconds * 10 + digit }
                count += 1
            }
            guard count > 0 else { throw .malformed }
            for _ in count..<max(count, 6) { microseconds *= 10 }
        }

        let offsetSeconds: Int64
        switch reader.peek {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            reader.advance()
            offsetSeconds = 0
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign: Int64 = reader.peek == UInt8(ascii: "-") ? -1 : 1
            reader.advance()
            let offsetHour = try reader.number(digits: 2)
            try reader.expect(UInt8(ascii: ":"))
            let offsetMinute = try reader.number(digits: 2)
            guard offsetHour <= 23, offsetMinute <= 59 else { throw .fieldOutOfRange }
            offsetSeconds = sign * (offsetHour * 3600 + offsetMinute * 60)
        case nil:
            throw .missingOffset
        default:
            throw .malformed
        }
        guard reader.isAtEnd else { throw .malformed }

        guard (1...12).contains(month),
            (1...CivilDate.daysInMonth(year: year, month: month)).contains(day),
            hour <= 23, minute <= 59, second <= 60
        else { throw .fieldOutOfRange }

        let days = CivilDate.daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        // Whole microseconds stay exact in a Double for the whole 0000-9999 range that matters
        // here (|value| < 2^53 until about year 2255), so the division is correctly rounded and
        // a millisecond timestamp parses to the same Date as `Date(timeIntervalSince1970: x.yyy)`.
        return Date(timeIntervalSince1970: Double(seconds * 1_000_000 + microseconds) / 1_000_000)
    }

    private static func clampedMilliseconds(_ value: Double) -> Int64 {
        guard value.isFinite else { return value > 0 ? maximumMilliseconds : minimumMilliseconds }
        let rounded = value.rounded()
        if rounded <= Double(minimumMilliseconds) { return minimumMilliseconds }
        if rounded >= Double(maximumMilliseconds) { return maximumMilliseconds }
        return Int64(rounded)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// A cursor over the bytes of a timestamp.
private struct ByteReader {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }
    var isAtEnd: Bool { index == bytes.count }

    mutating func advance() { index += 1 }

    /// Consumes one ASCII digit if there is one.
    mutating func digit() -> Int64? {
        guard let byte = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
        advance()
        return Int64(byte - UInt8(ascii: "0"))
    }

    /// Consumes exactly `digits` ASCII digits. Running out of input before the seconds field
    /// means a truncated timestamp; `2026-03-08T02:30:00` is caught later as a missing offset.
    mutating func number(digits: Int) throws(RFC3339Error) -> Int64 {
        var value: Int64 = 0
        for _ in 0..<digits {
            guard let digit = digit() else { throw .malformed }
            value = value * 10 + digit
        }
        return value
    }

    mutating func expect(_ byte: UInt8, or alternative: UInt8? = nil) throws(RFC3339Error) {
        guard let next = peek, next == byte || next == alternative else { throw .malformed }
        advance()
    }
}
