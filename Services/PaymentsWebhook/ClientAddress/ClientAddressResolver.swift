import ServiceKit

/// Whose budget of unverified requests a request spends: one IPv4 address, one IPv6 /64 network (a
/// host commonly owns a whole /64 and can rotate through it), or a text that is not an address.
enum ClientSource: Hashable, Sendable {
    case v4(UInt32)
    /// The first 64 bits of an IPv6 address.
    case v6Network(UInt64)
    /// Not an address: an unknown peer (`unknown`), or a hop a proxy wrote that does not parse,
    /// cut to ``maximumTextLength`` characters so the limiter's memory stays bounded.
    case text(String)

    /// Longest `text` kept.
    static let maximumTextLength = 64

    init(_ address: IPAddress) {
        switch address {
        case .v4(let value): self = .v4(value)
        case .v6(let high, _): self = .v6Network(high)
        }
    }

    /// The source named by `text`: its address when it is one, otherwise the text itself.
    init(text: Substring) {
        if let address = IPAddress(forwardedHop: text) {
            self.init(address)
        } else {
            let trimmed = text.trimmingSpaces
            self = .text(String(trimmed.isEmpty ? "unknown" : trimmed.prefix(Self.maximumTextLength)))
        }
    }
}

/// Finds a request's client among the peer address and `X-Forwarded-For`.
///
/// With trusted proxies, the walk starts at the peer and moves leftwards through `X-Forwarded-For`
/// while the current hop is a trusted proxy; the first hop that is not is the client. Only a trusted
/// proxy's word is taken, so whatever a client writes into the header itself (further left) is never
/// reached. Without trusted proxies the header is ignored and the peer is the client.
struct ClientAddressResolver: Sendable {
    enum Policy: Sendable, Equatable {
        /// The peer address; `X-Forwarded-For` is ignored.
        case peer
        /// The first untrusted hop, read from the right, starting at the peer (`TRUSTED_PROXIES`).
        case trustedProxies([IPNetwork])
        /// The last `X-Forwarded-For` entry whoever sent it (deprecated `TRUST_FORWARDED_FOR=true`).
        case lastForwardedFor
    }

    let policy: Policy

    /// The client of a request from `peer` (nil when unknown, e.g. in-process tests) carrying the
    /// `X-Forwarded-For` field lines `forwardedFor`, in the order received.
    func client(peer: String?, forwardedFor: [String]) -> ClientSource {
        switch policy {
        case .peer:
            return ClientSource(text: Substring(peer ?? "unknown"))
        case .lastForwardedFor:
            for hop in Self.hopsFromTheRight(forwardedFor) { return ClientSource(text: hop) }
            return ClientSource(text: Substring(peer ?? "unknown"))
        case .trustedProxies(let networks):
            // Without a known peer nothing proves the header came from a trusted proxy.
            guard let peer, var current = IPAddress(forwardedHop: Substring(peer)) else { return ClientSource(text: Substring(peer ?? "unknown")) }
            for hop in Self.hopsFromTheRight(forwardedFor) {
                guard networks.contains(where: { $0.contains(current) }) else { break }
                guard let address = IPAddress(forwardedHop: hop) else { return ClientSource(text: hop) }
                current = address
            }
            return ClientSource(current)
        }
    }

    /// The non-empty comma-separated entries of `lines` from the last to the first, produced lazily
    /// (a walk that stops early never splits the rest of a long header).
    static func hopsFromTheRight(_ lines: [String]) -> some Sequence<Substring> {
        var lineIndex = lines.endIndex
        var rest: Substring?
        return AnyIterator<Substring> {
            while true {
                if rest == nil {
                    guard lineIndex > lines.startIndex else { return nil }
                    lineIndex -= 1
                    rest = Substring(lines[lineIndex])
                }
                guard let text = rest else { return nil }
                let hop: Substring
                if let comma = text.lastIndex(of: ",") {
                    hop = text[text.index(after: comma)...]
                    rest = text[..<comma]
                } else {
                    hop = text
                    rest = nil
                }
                if !hop.trimmingSpaces.isEmpty { return hop }
            }
        }
    }
}
