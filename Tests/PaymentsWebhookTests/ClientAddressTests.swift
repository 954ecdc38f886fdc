import ServiceKit
import Testing

@testable import PaymentsWebhook

@Suite("Client addresses: IP parsing, CIDR blocks, the X-Forwarded-For walk, and the LRU")
struct ClientAddressTests {
    static func network(_ text: String) throws -> IPNetwork { try IPNetwork(cidr: Substring(text)) }
    /// Whether `text` is an address inside `network` (false when it is no address).
    static func inside(_ network: IPNetwork, _ text: String) -> Bool { IPAddress(text).map(network.contains) ?? false }

    @Test("IPv4 and IPv6 text forms; IPv4-mapped IPv6 is IPv4; malformed text is refused")
    func parsing() throws {
        #expect(IPAddress("192.0.2.1") == .v4(0xC000_0201))
        #expect(IPAddress("0.0.0.0") == .v4(0))
        #expect(IPAddress("::1") == .v6(high: 0, low: 1))
        #expect(IPAddress("::") == .v6(high: 0, low: 0))
        #expect(IPAddress("2001:db8::") == .v6(high: 0x2001_0db8_0000_0000, low: 0))
        #expect(IPAddress("2001:DB8:0:0:1:2:3:4") == .v6(high: 0x2001_0db8_0000_0000, low: 0x0001_0002_0003_0004))
        #expect(IPAddress("64:ff9b::192.0.2.1") == .v6(high: 0x0064_ff9b_0000_0000, low: 0xC000_0201))
        #expect(IPAddress("::ffff:192.0.2.1") == .v4(0xC000_0201))
        #expect(IPAddress(forwardedHop: " 192.0.2.1:4711 ") == .v4(0xC000_0201))
        #expect(IPAddress(forwardedHop: "[2001:db8::1]:443") == IPAddress("2001:db8::1"))
        #expect(IPAddress(forwardedHop: "[2001:db8::1]") == IPAddress("2001:db8::1"))
        for bad in [
            "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "1.2.3.4 ", "a.b.c.d", ":", ":::", "1::2::3", "12345::",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::8", "::g", "fe80::1%eth0", "::1.2.3", "unknown", "[::1]",
        ] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        #expect(IPAddress(forwardedHop: "[::1]:") == nil)
        #expect(IPAddress(forwardedHop: "[::1]x") == nil)
    }

    @Test("CIDR blocks: v4 and v6, /0, /32, /128, bare addresses; matching never crosses families")
    func cidr() throws {
        let ten = try Self.network("10.0.0.0/8")
        #expect(Self.inside(ten, "10.255.1.2"))
        #expect(!Self.inside(ten, "11.0.0.1"))
        #expect(!Self.inside(ten, "::ffff:11.0.0.1"))
        #expect(Self.inside(ten, "::ffff:10.0.0.1"))
        let host = try Self.network("192.0.2.7/32")
        #expect(Self.inside(host, "192.0.2.7") && !Self.inside(host, "192.0.2.8"))
        #expect(try Self.network("192.0.2.7") == host)
        let everyV4 = try Self.network("0.0.0.0/0")
        #expect(Self.inside(everyV4, "203.0.113.9") && !Self.inside(everyV4, "2001:db8::1"))
        let everyV6 = try Self.network("::/0")
        #expect(Self.inside(everyV6, "2001:db8::1") && !Self.inside(everyV6, "203.0.113.9"))
        let v6 = try Self.network("2001:db8:abcd::/48")
        #expect(Self.inside(v6, "2001:db8:abcd:ffff::1") && !Self.inside(v6, "2001:db8:abce::1"))
        let odd = try Self.network("2001:db8::/33")
        #expect(Self.inside(odd, "2001:db8:7fff::1") && !Self.inside(odd, "2001:db8:8000::1"))
        let loopback = try Self.network("::1/128")
        #expect(Self.inside(loopback, "::1") && !Self.inside(loopback, "::2"))
        #expect(try Self.network("::1") == loopback)
        #expect(try Self.network("::ffff:10.0.0.0/104") == ten)
        #expect(try IPNetwork.list("10.0.0.0/8, ::1/128") == [ten, loopback])

        let malformed: [(String, IPNetwork.ParseError)] = [
            ("10.0.0.0/33", .badPrefixLength("10.0.0.0/33")), ("::/129", .badPrefixLength("::/129")), ("10.0.0.0/", .badPrefixLength("10.0.0.0/")),
            ("10.0.0.0/-1", .badPrefixLength("10.0.0.0/-1")), ("10.0.0.0/+8", .badPrefixLength("10.0.0.0/+8")),
            ("10.0.0.0/8/8", .badPrefixLength("10.0.0.0/8/8")), ("::ffff:10.0.0.0/8", .badPrefixLength("::ffff:10.0.0.0/8")),
            ("10.0.0.1/8", .hostBitsSet("10.0.0.1/8")), ("2001:db8::1/64", .hostBitsSet("2001:db8::1/64")),
            ("proxy.internal", .notAnAddress("proxy.internal")),
            ("/8", .notAnAddress("/8")), ("", .notAnAddress("")),
        ]
        for (text, error) in malformed {
            #expect(throws: error, "\(text)") { try Self.network(text) }
        }
        #expect(throws: IPNetwork.ParseError.notAnAddress("")) { try IPNetwork.list("10.0.0.0/8,") }
    }

    @Test("the walk: from the peer leftwards while the hop is a trusted proxy; the first untrusted hop is the client")
    func hopWalk() throws {
        let resolver = ClientAddressResolver(policy: .trustedProxies(try IPNetwork.list("10.0.0.0/8,2001:db8:ffff::/48")))
        func client(_ peer: String?, _ forwarded: [String]) -> ClientSource { resolver.client(peer: peer, forwardedFor: forwarded) }
        // Peer not a proxy: the header is not believed.
        #expect(client("198.51.100.1", ["192.0.2.1"]) == ClientSource(text: "198.51.100.1"))
        // One proxy; what the client wrote further left is never reached.
        #expect(client("10.0.0.1", ["203.0.113.5, 192.0.2.1"]) == ClientSource(text: "192.0.2.1"))
        // Two proxies, across header lines, with spaces, ports and an IPv6 proxy.
        #expect(client("10.0.0.1", ["203.0.113.5", "192.0.2.1:5000 ,2001:db8:ffff::7", " 10.9.9.9"]) == ClientSource(text: "192.0.2.1"))
        // Every hop trusted: the leftmost is the best we know.
        #expect(client("10.0.0.1", ["10.0.0.2, 10.0.0.3"]) == ClientSource(text: "10.0.0.2"))
        // No header: the peer.
        #expect(client("10.0.0.1", []) == ClientSource(text: "10.0.0.1"))
        // Empty entries are skipped; a hop that is no address ends the walk as the client.
        #expect(client("10.0.0.1", ["192.0.2.1,, "]) == ClientSource(text: "192.0.2.1"))
        #expect(client("10.0.0.1", ["192.0.2.1, unknown"]) == .text("unknown"))
        #expect(client("10.0.0.1", [String(repeating: "x", count: 500)]) == .text(String(repeating: "x", count: 64)))
        // Without a known peer nothing proves the header came from a proxy.
        #expect(client(nil, ["192.0.2.1"]) == .text("unknown"))

        let peerOnly = ClientAddressResolver(policy: .peer)
        #expect(peerOnly.client(peer: "198.51.100.1", forwardedFor: ["192.0.2.1"]) == ClientSource(text: "198.51.100.1"))
        let legacy = ClientAddressResolver(policy: .lastForwardedFor)
        #expect(legacy.client(peer: "198.51.100.1", forwardedFor: ["203.0.113.5, 192.0.2.1"]) == ClientSource(text: "192.0.2.1"))
        #expect(legacy.client(peer: "198.51.100.1", forwardedFor: []) == ClientSource(text: "198.51.100.1"))
    }

    @Test("IPv6 sources are their /64; IPv4-mapped peers are their IPv4 address")
    func aggregation() {
        #expect(ClientSource(text: "2001:db8:1:2::1") == ClientSource(text: "2001:db8:1:2:ffff::"))
        #expect(ClientSource(text: "2001:db8:1:2::1") == .v6Network(0x2001_0db8_0001_0002))
        #expect(ClientSource(text: "2001:db8:1:2::1") != ClientSource(text: "2001:db8:1:3::1"))
        #expect(ClientSource(text: "::ffff:192.0.2.1") == ClientSource(text: "192.0.2.1"))
        #expect(ClientSource(text: "192.0.2.1") != ClientSource(text: "192.0.2.2"))
    }

    @Test("the LRU map: reads refresh, a full map forgets its least recently used entry, removals free room")
    func leastRecentlyUsed() {
        var map = LeastRecentlyUsedMap<String, Int>(capacity: 3)
        #expect(map.set(1, for: "a") == nil)
        #expect(map.set(2, for: "b") == nil)
        #expect(map.set(3, for: "c") == nil)
        #expect(map.keysByRecency == ["c", "b", "a"])
        #expect(map.value(for: "a") == 1)
        #expect(map.keysByRecency == ["a", "c", "b"])
        #expect(map.set(4, for: "d") == "b")
        #expect(map.keysByRecency == ["d", "a", "c"] && map.count == 3)
        #expect(map.set(30, for: "c") == nil)
        #expect(map.keysByRecency == ["c", "d", "a"])
        map.removeValue(for: "d")
        #expect(map.keysByRecency == ["c", "a"] && map.value(for: "d") == nil)
        #expect(map.set(5, for: "e") == nil)
        #expect(map.set(6, for: "f") == "a")
        #expect(map.keysByRecency == ["f", "e", "c"] && map.value(for: "c") == 30)
        // Many more keys than room: always the last `capacity`, newest first.
        for index in 0..<10_000 { map.set(index, for: "k\(index)") }
        #expect(map.keysByRecency == ["k9999", "k9998", "k9997"] && map.count == 3)
    }

    @Test("TRUSTED_PROXIES: parsed, or start-up stops naming it; TRUST_FORWARDED_FOR still works with a deprecation warning")
    func configuration() throws {
        let base = [
            "DATABASE_URL": "postgres://127.0.0.1/db", "REDIS_URL": "redis://127.0.0.1:6379", "ADMIN_TOKEN": "a", "STRIPE_WEBHOOK_SECRETS": "whsec_x",
            "PAYMENT_EVENTS_SECRETS": PaymentsHarness.eventsSecretText, "PROVIDER_API_KEY": "sk_test",
        ]
        func load(_ extra: [String: String], flags: [String: String?] = [:]) throws -> PaymentsConfiguration {
            try PaymentsConfiguration(reader: ConfigurationReader(flags: flags, environment: base.merging(extra) { _, new in new }))
        }
        let plain = try load([:])
        #expect(plain.clientAddresses == .peer && plain.startupWarnings.isEmpty)
        let proxied = try load(["TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8"])
        #expect(proxied.clientAddresses == .trustedProxies([try Self.network("10.0.0.0/8"), try Self.network("fd00::/8")]))
        #expect(proxied.startupWarnings.isEmpty)
        let flagged = try load(["TRUSTED_PROXIES": "10.0.0.0/8"], flags: ["TRUSTED_PROXIES": "192.0.2.0/24"])
        #expect(flagged.clientAddresses == .trustedProxies([try Self.network("192.0.2.0/24")]))
        let legacy = try load(["TRUST_FORWARDED_FOR": "true"])
        #expect(legacy.clientAddresses == .lastForwardedFor && legacy.startupWarnings.count == 1)
        #expect(legacy.startupWarnings.first?.contains("TRUST_FORWARDED_FOR") == true)
        let both = try load(["TRUST_FORWARDED_FOR": "true", "TRUSTED_PROXIES": "10.0.0.0/8"])
        #expect(both.clientAddresses == .trustedProxies([try Self.network("10.0.0.0/8")]) && both.startupWarnings.count == 1)
        for bad in ["10.0.0.0/33", "proxy", "10.0.0.1/8", "10.0.0.0/8,,::1"] {
            let error = #expect(throws: ConfigurationError.self, "\(bad)") { try load(["TRUSTED_PROXIES": bad]) }
            #expect(error?.name == "TRUSTED_PROXIES" && error?.description.contains("\n") == false)
        }
    }
}
