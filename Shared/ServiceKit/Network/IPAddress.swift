/// An IPv4 or IPv6 address, parsed from its text form without the C library.
///
/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, as a dual-stack socket reports an IPv4 peer) are
/// the IPv4 address, so one network list and one limiter key cover both spellings.
public enum IPAddress: Hashable, Sendable {
    case v4(UInt32)
    /// The 128 bits as two halves; `high` holds the /64 network prefix.
    case v6(high: UInt64, low: UInt64)

    /// Parses dotted-quad IPv4 (no leading zeros, which some parsers read as octal) or RFC 4291 IPv6
    /// text (`::` once, an optional dotted-quad tail, no zone); nil for anything else.
    public init?(_ text: Substring) {
        if text.contains(":") {
            guard let (high, low) = Self.parseV6(text) else { return nil }
            if high == 0, low >> 32 == 0xFFFF { self = .v4(UInt32(truncatingIfNeeded: low)) } else { self = .v6(high: high, low: low) }
        } else {
            guard let value = Self.parseV4(text) else { return nil }
            self = .v4(value)
        }
    }

    /// Parses `text`; see ``init(_:)-(Substring)``.
    public init?(_ text: String) {
        self.init(Substring(text))
    }

    /// Parses one `X-Forwarded-For` hop: an address, optionally with a port as some proxies write it
    /// (`192.0.2.1:4711`, `[2001:db8::1]:4711`), surrounded by optional spaces.
    public init?(forwardedHop hop: Substring) {
        var text = hop.trimmingSpaces
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.first == ":" && rest.dropFirst().allSatisfy(\.isASCIIDigit) && rest.count > 1) else { return nil }
            text = text[text.index(after: text.startIndex)..<close]
        } else if let colon = text.firstIndex(of: ":"), text.lastIndex(of: ":") == colon {
            text = text[..<colon]
        }
        self.init(text)
    }

    private static func parseV4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCIIDigit), part.count == 1 || part.first != "0",
                let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    private static func parseV6(_ text: Substring) -> (UInt64, UInt64)? {
        let halves = text.split(separator: "::", omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return nil }
        guard let head = groups(halves[0], allowsV4Tail: halves.count == 1) else { return nil }
        var words = head
        if halves.count == 2 {
            guard let tail = groups(halves[1], allowsV4Tail: true), head.count + tail.count <= 7 else { return nil }
            words += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard words.count == 8 else { return nil }
        let high = words[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = words[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return (high, low)
    }

    /// The 16-bit groups of one side of `::`; a dotted-quad last group counts as two.
    private static func groups(_ text: Substring, allowsV4Tail: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var words: [UInt16] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, allowsV4Tail, part.contains(".") {
                guard let v4 = parseV4(part) else { return nil }
                words += [UInt16(v4 >> 16), UInt16(v4 & 0xFFFF)]
            } else {
                guard (1...4).contains(part.count), part.allSatisfy(\.isHexDigit), let word = UInt16(part, radix: 16) else { return nil }
                words.append(word)
            }
        }
        return words
    }
}

extension IPAddress: CustomStringConvertible {
    /// The text form: dotted-quad IPv4, or IPv6 as eight lower-case hex groups without `::`
    /// compression (what `inet_pton` and ``init(_:)-(String)`` read back to the same address).
    public var description: String {
        switch self {
        case .v4(let value):
            return [24, 16, 8, 0].map { String(value >> UInt32($0) & 0xFF) }.joined(separator: ".")
        case .v6(let high, let low):
            let groups = [high, low].flatMap { half in [48, 32, 16, 0].map { String(half >> UInt64($0) & 0xFFFF, radix: 16) } }
            return groups.joined(separator: ":")
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
