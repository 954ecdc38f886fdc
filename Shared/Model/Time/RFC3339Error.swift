import Foundation

/// Why a string was refused as an RFC 3339 timestamp.
public enum RFC3339Error: Error, Hashable, Sendable, CustomStringConvertible {
    /// The text is not `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)`.
    case malformed
    /// The text has no UTC offset (a "naive" local date-time), so its instant is unknown.
    case missingOffset
    /// A field is out of range (month 13, February 30, hour 24, offset +24:00, ...).
    case fieldOutOfRange

    /// A one-line explanation suitable for a 400/422 message.
    public var description: String {
        switch self {
        case .malformed: "not an RFC 3339 timestamp (expected e.g. 2026-11-21T08:44:21.123Z)"
        case .missingOffset: "RFC 3339 timestamp needs an offset (Z or +hh:mm)"
        case .fieldOutOfRange: "RFC 3339 timestamp has a field out of range"
        }
    }
}
