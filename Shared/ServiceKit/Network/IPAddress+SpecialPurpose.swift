/// Address blocks a server must not be made to call on a subscriber's behalf (server-side request
/// forgery): its own host, the private networks around it, link-local addresses (where cloud
/// metadata services answer, e.g. 169.254.169.254 and fd00:ec2::254) and addresses that are not
/// unicast destinations on the public internet (IANA's special-purpose registries).
extension IPAddress {
    /// Why the address is not a public unicast destination, or nil when it is one.
    public var nonPublicReason: String? {
        for (network, reason) in Self.nonPublicBlocks where network.contains(self) { return reason }
        // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form (::/96) carry an IPv4 address
        // in their last 32 bits: judged by that address.
        if case .v6(let high, let low) = self, low >> 32 == 0, high == 0x0064_ff9b_0000_0000 || high == 0 {
            return IPAddress.v4(UInt32(truncatingIfNeeded: low)).nonPublicReason.map { "\($0) (embedded in IPv6)" }
        }
        return nil
    }

    private static let nonPublicBlocks: [(IPNetwork, String)] = [
        ("0.0.0.0/8", "the unspecified network"),
        ("10.0.0.0/8", "a private network"),
        ("100.64.0.0/10", "carrier-grade NAT space"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "a private network"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "a private network"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "the unspecified address"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4 (embeds an IPv4 address)"),
        ("fc00::/7", "a unique-local (private) network"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    ].map { text, reason in
        // The literals above are valid blocks; a typo there fails every test that classifies an address.
        (try? IPNetwork(cidr: Substring(text))).map { ($0, reason) }
    }.compactMap { $0 }
}
