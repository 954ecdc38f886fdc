import Foundation
import ServiceKit
import SharedModel
import Testing

@testable import Notification

/// The SSRF policy of endpoint URLs (DESIGN.md, Notification; notification-api.md): the address
/// classification, the policy itself with an injected resolver, the API's refusals, and the check
/// again at delivery (DNS rebinding).
@Suite("Endpoint URL policy: only public http(s) destinations, checked at creation and again before every attempt")
struct URLPolicyTests {
    // MARK: Address classification

    static let nonPublicAddresses = [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "::", "fe80::1", "fc00::1",
        "fd00:ec2::254", "::ffff:127.0.0.1", "224.0.0.1", "64:ff9b::a9fe:a9fe", "::127.0.0.1",
    ]
    static let publicAddresses = ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808"]

    @Test(
        "loopback, private, link-local (metadata), CGNAT, unspecified, unique-local, IPv4-mapped, NAT64 and IPv4-compatible private, and multicast addresses are not public",
        arguments: nonPublicAddresses)
    func nonPublicAddress(_ text: String) throws {
        let address = try #require(IPAddress(text), "\(text) parses")
        let reason = address.nonPublicReason
        #expect(reason != nil, "\(text) must be classified as non-public")
        #expect(reason?.isEmpty == false)
    }

    @Test("global unicast IPv4 and IPv6 addresses are public", arguments: publicAddresses)
    func publicAddress(_ text: String) throws {
        let address = try #require(IPAddress(text), "\(text) parses")
        #expect(address.nonPublicReason == nil, "\(text) is public, got \(address.nonPublicReason ?? "")")
    }

    @Test("an address's text form (what a pinned connection is given) reads back as the same address")
    func textFormRoundTrips() throws {
        for text in Self.nonPublicAddresses + Self.publicAddresses + ["255.255.255.255", "2001:db8:0:1:2:3:4:5", "ffff::"] {
            let address = try #require(IPAddress(text))
            #expect(IPAddress(address.description) == address, "\(text) -> \(address.description)")
        }
        #expect(IPAddress("93.184.216.34")?.description == "93.184.216.34")
        #expect(IPAddress("2606:4700::1111")?.description == "2606:4700:0:0:0:0:0:1111")
        // An IPv4-mapped address is the IPv4 address, so it is written as one.
        #expect(IPAddress("::ffff:127.0.0.1")?.description == "127.0.0.1")
    }

    @Test("the reasons name what the address is: loopback, private network, link-local metadata")
    func reasonsNameTheBlock() throws {
        #expect(try #require(IPAddress("127.0.0.1")).nonPublicReason?.contains("loopback") == true)
        #expect(try #require(IPAddress("::ffff:127.0.0.1")).nonPublicReason?.contains("loopback") == true)
        #expect(try #require(IPAddress("10.0.0.1")).nonPublicReason?.contains("private") == true)
        #expect(try #require(IPAddress("169.254.169.254")).nonPublicReason?.contains("link-local") == true)
    }

    // MARK: The policy with a resolver

    /// The refusal `policy` gives `url`, or nil when it accepts it.
    static func refusal(_ policy: EndpointURLPolicy, _ url: String) async -> EndpointURLPolicy.Refusal? {
        do {
            try await policy.check(url)
            return nil
        } catch {
            return error
        }
    }

    static func resolver() -> TestResolver {
        let resolver = TestResolver()
        configure(resolver)
        return resolver
    }

    /// Public and private names, as the tests of this suite use them.
    static func configure(_ resolver: TestResolver) {
        resolver.set("hooks.example.com", to: ["93.184.216.34"])
        resolver.set("example.com", to: ["93.184.216.34"])
        resolver.set("internal.test", to: ["127.0.0.1"])
        resolver.set("mixed.test", to: ["93.184.216.34", "10.0.0.1"])
    }

    static let longURL = "https://hooks.example.com/" + String(repeating: "a", count: 2_100)

    /// Every URL the policy refuses without private networks, with a word its reason must contain.
    static let refusedURLs: [(url: String, reasonMentions: String)] = [
        ("http://127.0.0.1", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://10.0.0.1", "private"),
        ("http://internal.test/hook", "loopback"),
        ("http://mixed.test/hook", "private"),
        ("http://user:pass@example.com", "credentials"),
        ("ftp://example.com", "ftp"),
        ("file:///etc/passwd", "file"),
        ("http://2130706433/", "numeric"),
        (longURL, "2048"),
        ("http://nowhere.test/hook", "does not resolve"),
    ]

    @Test(
        "without private networks: loopback, metadata, private, mixed, credentialed, non-http, numeric, overlong and unresolvable URLs are refused"
    )
    func refusedWithoutPrivateNetworks() async {
        let policy = EndpointURLPolicy(allowsPrivateNetworks: false, resolver: Self.resolver())
        for (url, word) in Self.refusedURLs {
            let refusal = await Self.refusal(policy, url)
            #expect(refusal != nil, "\(url.prefix(80)) must be refused")
            #expect(refusal?.reason.contains(word) == true, "\(url.prefix(80)): reason '\(refusal?.reason ?? "")' should mention \(word)")
        }
    }

    @Test("alternative spellings of loopback and metadata addresses are refused: IPv4-mapped, octal, hex, short, trailing dot, expanded IPv6")
    func alternativeSpellingsRefused() async {
        let resolver = Self.resolver()
        resolver.set("v6private.test", to: ["fd00::1"])
        let policy = EndpointURLPolicy(allowsPrivateNetworks: false, resolver: resolver)
        for url in [
            "http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/latest", "http://[0:0:0:0:0:0:0:1]/", "http://[fd00:ec2::254]/",
            "http://0x7f000001/", "http://0177.0.0.1/", "http://127.1/", "http://0/", "http://127.0.0.1.:80/", "HTTP://127.0.0.1/",
            "http://v6private.test/", "http://[fe80::1%25eth0]/",
        ] {
            #expect(await Self.refusal(policy, url) != nil, "\(url) must be refused")
        }
    }

    @Test("without private networks, a name resolving to a public address and a public IPv6 literal with a port are accepted")
    func acceptedWithoutPrivateNetworks() async {
        let policy = EndpointURLPolicy(allowsPrivateNetworks: false, resolver: Self.resolver())
        for url in ["https://hooks.example.com/x", "http://[2606:4700::1111]:8443/p"] {
            let refusal = await Self.refusal(policy, url)
            #expect(refusal == nil, "\(url) must be accepted, got \(refusal?.reason ?? "")")
        }
        // Exactly 2,048 characters is still allowed; the limit is on longer URLs.
        let prefix = "https://hooks.example.com/"
        let atLimit = prefix + String(repeating: "b", count: EndpointURLPolicy.maximumLength - prefix.count)
        #expect(atLimit.count == 2_048)
        #expect(await Self.refusal(policy, atLimit) == nil)
        #expect(await Self.refusal(policy, atLimit + "b") != nil)
    }

    @Test("with private networks allowed, a loopback URL is accepted but credentials and non-http schemes are still refused")
    func privateNetworksAllowed() async {
        let policy = EndpointURLPolicy(allowsPrivateNetworks: true, resolver: Self.resolver())
        #expect(await Self.refusal(policy, "http://127.0.0.1:9/x") == nil)
        #expect(await Self.refusal(policy, "http://user:pass@example.com") != nil)
        #expect(await Self.refusal(policy, "http://user:pass@127.0.0.1:9/x") != nil)
        #expect(await Self.refusal(policy, "ftp://example.com") != nil)
        #expect(await Self.refusal(policy, "file:///etc/passwd") != nil)
    }

    // MARK: Through the API

    static let privateNetworksOff = ["NOTIFICATION_ALLOW_PRIVATE_NETWORKS": "false"]

    @Test("POST /v1/endpoints answers 422 endpoint_url_not_allowed for every refused URL and stores nothing")
    func createRefused() async throws {
        let harness = try await NotificationHarness.make(settings: Self.privateNetworksOff)
        Self.configure(harness.resolver)
        try await harness.run(dispatching: false) { client in
            for (url, _) in Self.refusedURLs {
                let answer = try await harness.send(client, .post, "/v1/endpoints", body: ["url": .string(url)])
                #expect(answer.status == .unprocessableContent, "\(url.prefix(80)): \(String(describing: answer.json))")
                #expect(answer.errorCode == "endpoint_url_not_allowed", "\(url.prefix(80)): \(String(describing: answer.json))")
                #expect(answer["error"]?["message"]?.stringValue?.isEmpty == false)
                #expect(answer["error"]?["details"]?["field"]?.stringValue == "url")
            }
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoints") == 0, "no refused URL created a row")
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoint_secrets") == 0)
            // The same API accepts a public destination.
            let accepted = try await harness.send(client, .post, "/v1/endpoints", body: ["url": "https://hooks.example.com/x"])
            #expect(accepted.status == .created)
            #expect(try await harness.count("SELECT count(*) FROM notification.endpoints") == 1)
        }
    }

    @Test("PATCH to a refused URL answers 422 endpoint_url_not_allowed and leaves the endpoint's URL unchanged")
    func patchRefused() async throws {
        let harness = try await NotificationHarness.make(settings: Self.privateNetworksOff)
        Self.configure(harness.resolver)
        try await harness.run(dispatching: false) { client in
            let endpoint = try await harness.createEndpoint(client, url: "https://hooks.example.com/x")
            for (url, _) in Self.refusedURLs {
                let answer = try await harness.send(client, .patch, "/v1/endpoints/\(endpoint.id)", body: ["url": .string(url)])
                #expect(answer.status == .unprocessableContent, "\(url.prefix(80)): \(String(describing: answer.json))")
                #expect(answer.errorCode == "endpoint_url_not_allowed", "\(url.prefix(80))")
            }
            let after = try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)")
            #expect(after.status == .ok)
            #expect(after["url"]?.stringValue == "https://hooks.example.com/x")
            let stored = try await harness.postgres.query("SELECT url FROM notification.endpoints").map { try $0.decode(String.self, at: 0) }
            #expect(stored == ["https://hooks.example.com/x"])
        }
    }

    // MARK: At delivery

    @Test("a name that resolved to a public address at creation and to loopback at delivery is not called: the attempt fails as no longer allowed")
    func dnsRebindingAtDelivery() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        let harness = try await NotificationHarness.make(settings: Self.privateNetworksOff)
        harness.resolver.set("rebind.test", to: ["93.184.216.34"])
        try await harness.run { client in
            let endpoint = try await harness.createEndpoint(client, url: "http://rebind.test:\(receiver.port)/hook")
            harness.resolver.set("rebind.test", to: ["127.0.0.1"])
            try await harness.fanOut([try NotificationHarness.event(occurredAt: harness.clock.now.addingTimeInterval(1))])
            #expect(try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts") == 1 })

            let list = try await harness.send(client, .get, "/v1/endpoints/\(endpoint.id)/deliveries")
            #expect(list.status == .ok)
            let delivery = try #require(list["deliveries"]?.arrayValue?.first)
            #expect(delivery["attempt_count"]?.integerValue == 1)
            #expect(delivery["status"]?.stringValue != "succeeded")
            #expect(delivery["last_status_code"] == .null)
            #expect(delivery["last_error"]?.stringValue?.contains("no longer allowed") == true, "\(String(describing: delivery["last_error"]))")

            let id = try #require(delivery["delivery_id"]?.stringValue)
            let detail = try await harness.send(client, .get, "/v1/deliveries/\(id)")
            #expect(detail.status == .ok)
            let attempts = try #require(detail["attempts"]?.arrayValue)
            #expect(attempts.count == 1)
            #expect(attempts.first?["status_code"] == .null)
            #expect(attempts.first?["error"]?.stringValue?.contains("no longer allowed") == true, "\(String(describing: attempts.first))")

            try await Task.sleep(for: .milliseconds(300))
            #expect(receiver.requests().isEmpty, "the receiver on 127.0.0.1 got no request")
        }
    }

    @Test(
        "an attempt connects to the address its check resolved, not to what the client would resolve: a name only the check's resolver knows is delivered to, and a name that moves is followed only after a new check"
    )
    func attemptsConnectToTheCheckedAddress() async throws {
        let receiver = try await TestReceiver.start()
        defer { Task { await receiver.stop() } }
        // The address check on, with the two loopback addresses the test uses accepted as public.
        let loopback = try ["127.0.0.1", "127.0.0.2"].map { try #require(IPAddress($0)) }
        let harness = try await NotificationHarness.make(settings: Self.privateNetworksOff, treatedAsPublic: Set(loopback))
        // `.invalid` never resolves through the system (RFC 6761): only a pinned connection reaches the receiver.
        harness.resolver.set("pinned.invalid", to: ["127.0.0.1"])
        try await harness.run { client in
            _ = try await harness.createEndpoint(client, url: "http://pinned.invalid:\(receiver.port)/pinned")
            try await harness.fanOut([try NotificationHarness.event(occurredAt: harness.clock.now.addingTimeInterval(1))])
            let first = await receiver.waitFor(1, at: "/pinned")
            #expect(first.count == 1, "delivered through the address the check resolved")
            #expect(
                try await harness.eventually {
                    try await harness.count("SELECT count(*) FROM notification.deliveries WHERE status = 'succeeded'") == 1
                })
            #expect(harness.pinned.count == 1)

            // The name moves to an address where nothing listens: the next attempt goes there (refused),
            // through a client of its own; the old address is not used again.
            harness.resolver.set("pinned.invalid", to: ["127.0.0.2"])
            try await harness.fanOut([try NotificationHarness.event(occurredAt: harness.clock.now.addingTimeInterval(2))])
            #expect(try await harness.eventually { try await harness.count("SELECT count(*) FROM notification.attempts") == 2 })
            let errors = try await harness.postgres.query(
                "SELECT error FROM notification.attempts WHERE status_code IS NULL"
            ).map { try $0.decode(String?.self, at: 0) }
            #expect(errors.count == 1, "the second attempt failed to connect: \(errors)")
            #expect(harness.pinned.count == 2)
            try await Task.sleep(for: .milliseconds(200))
            #expect(receiver.requests("/pinned").count == 1, "the receiver on 127.0.0.1 got only the first attempt")
        }
    }

    @Test("with private networks allowed nothing is resolved or pinned: the HTTP client resolves the name itself")
    func privateNetworksAllowedArePinnedNowhere() async throws {
        let resolver = TestResolver()
        resolver.set("receiver.test", to: ["127.0.0.1"])
        let policy = EndpointURLPolicy(allowsPrivateNetworks: true, resolver: resolver)
        #expect(try await policy.check("http://receiver.test:9/x") == nil)
        #expect(try await policy.check("http://localhost:9/x") == nil)
        let checked = EndpointURLPolicy(allowsPrivateNetworks: false, resolver: Self.resolver())
        #expect(try await checked.check("https://hooks.example.com/x") == IPAddress("93.184.216.34"))
        #expect(try await checked.check("http://[2606:4700::1111]:8443/p") == nil, "a literal is its own address")
    }
}
