import Foundation

/// A Swift value that can be decoded from a result column in Postgres' binary format.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL column value of the given type.
    init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws
}

/// Why a column could not be decoded.
public enum PostgresDecodingError: Error, Sendable, CustomStringConvertible {
    case typeMismatch(any Any.Type, PostgresType)
    case unexpected(String, PostgresType)
    case unexpectedNull(column: String)
    case noSuchColumn(String)

    public var description: String {
        switch self {
        case .typeMismatch(let swiftType, let type): "cannot decode \(type) as \(swiftType)"
        case .unexpected(let what, let type): "malformed \(what) in \(type)"
        case .unexpectedNull(let column): "column \(column) is NULL"
        case .noSuchColumn(let column): "no column named \(column)"
        }
    }
}

extension ArraySlice<UInt8> {
    /// Reads a big-endian integer at `offset` from the slice's start.
    func readInteger<T: FixedWidthInteger>(_: T.Type, at offset: Int = 0) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, count >= offset + size else { return nil }
        var value: T = 0
        let start = startIndex + offset
        for index in start..<(start + size) {
            value = (value << 8) | T(truncatingIfNeeded: self[index])
        }
        return value
    }
}

extension FixedWidthInteger where Self: PostgresDecodable {
    /// Decodes int2, int4 or int8, refusing values that do not fit.
    static func decodeInteger(_ bytes: ArraySlice<UInt8>, type: PostgresType) throws -> Self {
        let wide: Int64
        switch (type.oid, bytes.count) {
        case (PostgresType.int2.oid, 2): wide = Int64(bytes.readInteger(Int16.self) ?? 0)
        case (PostgresType.int4.oid, 4), (PostgresType.oidType.oid, 4):
            wide = type == .oidType ? Int64(bytes.readInteger(UInt32.self) ?? 0) : Int64(bytes.readInteger(Int32.self) ?? 0)
        case (PostgresType.int8.oid, 8): wide = bytes.readInteger(Int64.self) ?? 0
        default: throw PostgresDecodingError.typeMismatch(Self.self, type)
        }
        guard let value = Self(exactly: wide) else { throw PostgresDecodingError.unexpected("out-of-range integer", type) }
        return value
    }
}

extension Int: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws { self = try Self.decodeInteger(bytes, type: type) }
}

extension Int64: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws { self = try Self.decodeInteger(bytes, type: type) }
}

extension Int32: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws { self = try Self.decodeInteger(bytes, type: type) }
}

extension Int16: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws { self = try Self.decodeInteger(bytes, type: type) }
}

extension Bool: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws {
        guard type == .bool, bytes.count == 1, let byte = bytes.first else { throw PostgresDecodingError.typeMismatch(Self.self, type) }
        self = byte != 0
    }
}

extension String: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws {
        if PostgresType.textual.contains(type.oid) {
            self = String(decoding: bytes, as: UTF8.self)
        } else if type == .jsonb, bytes.first == 1 {
            self = String(decoding: bytes.dropFirst(), as: UTF8.self)
        } else if type == .uuid {
            self = try UUID(postgresBytes: bytes, type: type).lowercasedString
        } else {
            throw PostgresDecodingError.typeMismatch(Self.self, type)
        }
    }
}

extension UUID: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws {
        guard type == .uuid, bytes.count == 16 else { throw PostgresDecodingError.typeMismatch(Self.self, type) }
        let b = Array(bytes)
        self = UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

extension Date: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws {
        guard type == .timestamptz || type == .timestamp, let microseconds = bytes.readInteger(Int64.self), bytes.count == 8 else {
            throw PostgresDecodingError.typeMismatch(Self.self, type)
        }
        // ±infinity are stored as Int64 extremes; they are not instants.
        guard microseconds != .max, microseconds != .min else { throw PostgresDecodingError.unexpected("infinite timestamp", type) }
        self = postgresEpoch.addingTimeInterval(TimeInterval(microseconds) / 1_000_000)
    }
}

extension Data: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws {
        guard type == .bytea else { throw PostgresDecodingError.typeMismatch(Self.self, type) }
        self = Data(bytes)
    }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    public init(postgresBytes bytes: ArraySlice<UInt8>, type: PostgresType) throws {
        guard let dimensions = bytes.readInteger(Int32.self, at: 0),
            let elementOID = bytes.readInteger(UInt32.self, at: 8)
        else { throw PostgresDecodingError.unexpected("array header", type) }
        if dimensions == 0 {
            self = []
            return
        }
        guard dimensions == 1, let count = bytes.readInteger(Int32.self, at: 12), count >= 0 else {
            throw PostgresDecodingError.unexpected("multi-dimensional array", type)
        }
        let elementType = PostgresType(oid: elementOID)
        var offset = 20
        var elements: [Element] = []
        elements.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let length = bytes.readInteger(Int32.self, at: offset) else { throw PostgresDecodingError.unexpected("array element", type) }
            offset += 4
            guard length >= 0 else { throw PostgresDecodingError.unexpected("NULL array element", type) }
            let start = bytes.startIndex + offset
            guard start + Int(length) <= bytes.endIndex else { throw PostgresDecodingError.unexpected("array element length", type) }
            elements.append(try Element(postgresBytes: bytes[start..<(start + Int(length))], type: elementType))
            offset += Int(length)
        }
        self = elements
    }
}
