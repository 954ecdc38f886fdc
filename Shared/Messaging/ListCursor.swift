import Foundation

/// Where a newest-first listing ordered by `(time, id)` continues: opaque to clients,
/// `<microseconds since 1970>_<uuid>`.
///
/// Guarantees: a cursor parsed from text names a time between 1970-01-01 and 9999-12-31T23:59:59.999999Z
/// (every time a listed row can have), so converting it never overflows; any other text, however
/// crafted, is refused (nil), never a trap.
public struct ListCursor: CustomStringConvertible, Sendable, Equatable {
    public let createdAt: Date
    public let id: UUID

    /// Microseconds since 1970 that a cursor may name: 1970-01-01 up to the end of year 9999.
    public static let microsecondRange: ClosedRange<Int64> = 0...253_402_300_799_999_999

    public init(createdAt: Date, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }

    /// Parses a cursor this service issued; nil for anything else (unparseable, or a time outside
    /// ``microsecondRange``).
    public init?(_ text: String) {
        let parts = text.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count <= 18, let micros = Int64(parts[0]), Self.microsecondRange.contains(micros),
            let id = UUID(uuidString: String(parts[1]))
        else { return nil }
        self.createdAt = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
        self.id = id
    }

    public var description: String {
        "\(Int64((createdAt.timeIntervalSince1970 * 1_000_000).rounded()))_\(id.lowercasedString)"
    }
}

/// A `cursor` that this service did not issue: unparseable, or naming a time outside 1970-9999.
/// The HTTP edge answers 400 `invalid_cursor`.
public struct InvalidCursor: Error, Sendable, Equatable {
    public init() {}
}
