/// A Redis reply as plain Swift data (RESP2), copied out of hiredis so it is `Sendable`.
public enum RedisReply: Sendable, Hashable {
    /// A bulk string; binary-safe.
    case bulk([UInt8])
    /// A simple status such as `OK` or `PONG`.
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    /// A nil bulk string or nil array.
    case null
    /// An error reply (`-ERR ...`); commands on ``RedisClient`` turn these into ``RedisError``.
    case error(String)

    /// The bulk or status text as UTF-8, nil otherwise.
    public var string: String? {
        switch self {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    /// The raw bytes of a bulk string.
    public var bytes: [UInt8]? {
        if case .bulk(let bytes) = self { return bytes }
        return nil
    }

    /// The integer, also parsed from a bulk string.
    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// True for an error reply (`-ERR ...`).
    public var isError: Bool {
        if case .error = self { return true }
        return false
    }
}

/// One argument of a command; binary-safe (values may contain NUL bytes).
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }
    public init<T: BinaryInteger>(_ integer: T) { self.bytes = Array(String(integer).utf8) }
    /// The integer's decimal digits, written directly (the generic initializer renders a `String`
    /// first; a hold sends eight integers).
    public init(_ integer: Int64) {
        var digits: [UInt8] = []
        digits.reserveCapacity(20)
        var rest = integer.magnitude
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        if integer < 0 { digits.append(UInt8(ascii: "-")) }
        self.bytes = digits.reversed()
    }
    public init(_ integer: Int) { self.init(Int64(integer)) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
}
