/// A block of addresses in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), e.g. one entry of
/// `TRUSTED_PROXIES`. A bare address is the block of that address alone (`/32` or `/128`).
public struct IPNetwork: Hashable, Sendable {
    /// The first address of the block.
    public let address: IPAddress
    /// How many leading bits every address of the block shares with ``address``.
    public let prefixLength: Int

    /// Why a text is not a network, in words for a configuration error.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notAnAddress(String)
        case badPrefixLength(String)
        case hostBitsSet(String)

        public var description: String {
            switch self {
            case .notAnAddress(let text): "'\(text)' is not an IPv4 or IPv6 address or CIDR block"
            case .badPrefixLength(let text): "'\(text)' has a prefix length outside 0-32 (IPv4) or 0-128 (IPv6)"
            // A typo such as 10.0.0.1/8 for 10.0.0.1/32 would trust 16 million addresses: refuse it.
            case .hostBitsSet(let text): "'\(text)' has bits set after its prefix length (write the block's first address, or /32 or /128)"
            }
        }
    }

    /// Parses `address/length` or a bare address. An IPv4-mapped IPv6 block (`::ffff:0:0/96` and
    /// longer) is the IPv4 block it maps.
    public init(cidr text: Substring) throws(ParseError) {
        let trimmed = text.trimmingSpaces
        let parts = trimmed.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let address = IPAddress(first) else { throw .notAnAddress(String(text)) }
        // IPv6 text (also an IPv4-mapped one, which parses as IPv4) counts 128 bits.
        var length = first.contains(":") ? 128 : 32
        if parts.count == 2 {
            guard let given = Int(parts[1]), parts[1].allSatisfy({ $0.isASCII && $0.isWholeNumber }), (0...length).contains(given) else {
                throw .badPrefixLength(String(trimmed))
            }
            // `::ffff:a.b.c.d/n` parsed as IPv4: n counts the 96 bits of the mapping prefix too.
            if case .v4 = address, first.contains(":") {
                guard given >= 96 else { throw .badPrefixLength(String(trimmed)) }
                length = given - 96
            } else {
                length = given
            }
        } else if case .v4 = address {
            length = 32
        }
        guard address.masked(to: length) == address else { throw .hostBitsSet(String(trimmed)) }
        self.address = address
        self.prefixLength = length
    }

    /// Whether `candidate` lies in this block (never across address families).
    public func contains(_ candidate: IPAddress) -> Bool {
        switch (address, candidate) {
        case (.v4, .v4), (.v6, .v6): candidate.masked(to: prefixLength) == address
        default: false
        }
    }

    /// Parses a comma-separated list (`TRUSTED_PROXIES`); empty items are not allowed.
    public static func list(_ text: String) throws(ParseError) -> [IPNetwork] {
        var networks: [IPNetwork] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            networks.append(try IPNetwork(cidr: item))
        }
        return networks
    }
}

extension IPAddress {
    /// The address with every bit after the first `length` cleared.
    func masked(to length: Int) -> IPAddress {
        switch self {
        case .v4(let value):
            return .v4(length == 0 ? 0 : value & ~UInt32(0) << (32 - length))
        case .v6(let high, let low):
            let highMask: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~UInt64(0) << (64 - length))
            let lowMask: UInt64 = length <= 64 ? 0 : (length == 128 ? ~0 : ~UInt64(0) << (128 - length))
            return .v6(high: high & highMask, low: low & lowMask)
        }
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    public var trimmingSpaces: Substring {
        var text = drop { $0 == " " || $0 == "\t" }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
