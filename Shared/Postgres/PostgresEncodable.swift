import Foundation

/// A Swift value that can be bound as a statement parameter (binary format, so no quoting or parsing).
public protocol PostgresEncodable: Sendable {
    /// The parameter's type, also used for a NULL of this type.
    static var postgresType: PostgresType { get }
    /// The value in Postgres' binary format.
    var postgresValue: PostgresValue { get }
}

extension PostgresEncodable {
    fileprivate func value(_ bytes: [UInt8]) -> PostgresValue {
        PostgresValue(type: Self.postgresType, bytes: bytes)
    }
}

@usableFromInline
func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

extension Int: PostgresEncodable {
    public static var postgresType: PostgresType { .int8 }
    public var postgresValue: PostgresValue { value(bigEndianBytes(Int64(self))) }
}

extension Int64: PostgresEncodable {
    public static var postgresType: PostgresType { .int8 }
    public var postgresValue: PostgresValue { value(bigEndianBytes(self)) }
}

extension Int32: PostgresEncodable {
    public static var postgresType: PostgresType { .int4 }
    public var postgresValue: PostgresValue { value(bigEndianBytes(self)) }
}

extension Int16: PostgresEncodable {
    public static var postgresType: PostgresType { .int2 }
    public var postgresValue: PostgresValue { value(bigEndianBytes(self)) }
}

extension Bool: PostgresEncodable {
    public static var postgresType: PostgresType { .bool }
    public var postgresValue: PostgresValue { value([self ? 1 : 0]) }
}

extension String: PostgresEncodable {
    public static var postgresType: PostgresType { .text }
    public var postgresValue: PostgresValue { value(Array(utf8)) }
}

extension Substring: PostgresEncodable {
    public static var postgresType: PostgresType { .text }
    public var postgresValue: PostgresValue { value(Array(utf8)) }
}

extension UUID: PostgresEncodable {
    public static var postgresType: PostgresType { .uuid }
    public var postgresValue: PostgresValue {
        let u = uuid
        return value([u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15])
    }
}

/// Postgres timestamps count microseconds from 2000-01-01 00:00:00 UTC.
let postgresEpoch = Date(timeIntervalSince1970: 946_684_800)

extension Date: PostgresEncodable {
    public static var postgresType: PostgresType { .timestamptz }
    public var postgresValue: PostgresValue {
        let microseconds = (timeIntervalSince(postgresEpoch) * 1_000_000).rounded()
        // Beyond Int64 (about 292,000 years either way) is Postgres' `infinity` / `-infinity`, never a trap.
        let wide: Int64 =
            if microseconds.isNaN || microseconds >= 9_223_372_036_854_775_808 {
                .max
            } else if microseconds <= -9_223_372_036_854_775_808 {
                .min
            } else {
                Int64(microseconds)
            }
        return value(bigEndianBytes(wide))
    }
}

extension Data: PostgresEncodable {
    public static var postgresType: PostgresType { .bytea }
    public var postgresValue: PostgresValue { value(Array(self)) }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public static var postgresType: PostgresType { Wrapped.postgresType }
    public var postgresValue: PostgresValue {
        switch self {
        case .some(let wrapped): wrapped.postgresValue
        case .none: .null(Wrapped.postgresType)
        }
    }
}

/// A `jsonb` value: already-encoded JSON text.
public struct PostgresJSONB: PostgresEncodable, PostgresDecodable, Hashable {
    public static var postgresType: PostgresType { .jsonb }
    /// The JSON document as UTF-8.
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ data: Data) { self.bytes = Array(data) }
    public init(string: String) { self.bytes = Array(string.utf8) }
    /// Encodes `value` with `encoder`.
    public init<T: Encodable>(encoding value: T, with encoder: JSONEncoder = JSONEncoder()) throws {
        self.bytes = Array(try encoder.encode(value))
    }

    public var postgresValue: PostgresValue {
        // Binary jsonb is a version byte (1) followed by the text.
        PostgresValue(type: .jsonb, bytes: [1] + bytes)
    }

    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws {
        switch type.oid {
        case PostgresType.jsonb.oid:
            guard bytes.first == 1 else { throw PostgresDecodingError.unexpected("jsonb version byte", type) }
            self.bytes = Array(bytes.dropFirst())
        case PostgresType.json.oid, PostgresType.text.oid:
            self.bytes = Array(bytes)
        default:
            throw PostgresDecodingError.typeMismatch(Self.self, type)
        }
    }

    /// The document as a string.
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// Decodes the document.
    public func decode<T: Decodable>(_ type: T.Type, with decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: Data(bytes))
    }
}

/// Elements that can travel in a one-dimensional Postgres array.
extension Array: PostgresEncodable where Element: PostgresEncodable {
    public static var postgresType: PostgresType { PostgresType(oid: Element.postgresType.arrayOID) }

    public var postgresValue: PostgresValue {
        // ndim, has-nulls flag, element oid, then (length, lower bound) per dimension, then elements.
        // A closure, not `\.postgresValue`: a key path in this generic context is built at run time
        // on every call.
        let elements = map { $0.postgresValue }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20 + elements.reduce(0) { $0 + 4 + ($1.bytes?.count ?? 0) })
        func append(_ integer: Int32) {
            Swift.withUnsafeBytes(of: integer.bigEndian) { bytes.append(contentsOf: $0) }
        }
        append(isEmpty ? 0 : 1)
        append(elements.contains { $0.bytes == nil } ? 1 : 0)
        Swift.withUnsafeBytes(of: Element.postgresType.oid.bigEndian) { bytes.append(contentsOf: $0) }
        if !isEmpty {
            append(Int32(count))
            append(1)
        }
        for element in elements {
            if let elementBytes = element.bytes {
                append(Int32(elementBytes.count))
                bytes += elementBytes
            } else {
                append(-1)
            }
        }
        return PostgresValue(type: Self.postgresType, bytes: bytes)
    }
}
