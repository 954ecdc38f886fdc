import AsyncHTTPClient
import ServiceKit
import Synchronization
import Testing

@testable import Notification

@Suite("Pinned HTTP clients: one per host and checked address, the least recently used idle ones shut down past the capacity")
struct PinnedHTTPClientsTests {
    /// Clients made so far, with the DNS override each was given.
    final class Made: Sendable {
        let overrides = Mutex<[[String: String]]>([])
    }

    static func clients(capacity: Int, made: Made) -> PinnedHTTPClients {
        PinnedHTTPClients(capacity: capacity) { override in
            made.overrides.withLock { $0.append(override) }
            return WebhookSender.makeClient(perHost: 4, dnsOverride: override)
        }
    }

    @Test("the same host and address reuse one client; another address of the host gets its own, pinned to it")
    func onePerHostAndAddress() async throws {
        let made = Made()
        let clients = Self.clients(capacity: 8, made: made)
        let address = try #require(IPAddress("93.184.216.34"))
        let moved = try #require(IPAddress("2606:4700::1111"))
        let first = try await clients.withClient(host: "hooks.example.com", address: address) { ObjectIdentifier($0) }
        let again = try await clients.withClient(host: "hooks.example.com", address: address) { ObjectIdentifier($0) }
        let other = try await clients.withClient(host: "hooks.example.com", address: moved) { ObjectIdentifier($0) }
        #expect(first == again)
        #expect(first != other)
        #expect(clients.count == 2)
        #expect(
            made.overrides.withLock { $0 } == [
                ["hooks.example.com": "93.184.216.34"], ["hooks.example.com": "2606:4700:0:0:0:0:0:1111"],
            ])
        await clients.shutdown()
        #expect(clients.count == 0)
        await #expect(throws: PinnedHTTPClients.Closed.self) {
            try await clients.withClient(host: "hooks.example.com", address: address) { _ in }
        }
    }

    @Test("past the capacity the least recently used idle clients go; a client an attempt is using stays until it is done")
    func capacity() async throws {
        let made = Made()
        let clients = Self.clients(capacity: 2, made: made)
        let address = try #require(IPAddress("93.184.216.34"))
        let (inUse, release) = AsyncStream.makeStream(of: Void.self)
        let (started, start) = AsyncStream.makeStream(of: Void.self)
        // An attempt that holds its client until released.
        let holding = Task {
            try await clients.withClient(host: "busy.example.com", address: address) { _ in
                start.yield()
                for await _ in inUse { break }
            }
        }
        for await _ in started { break }
        for host in ["a.example.com", "b.example.com", "c.example.com"] {
            try await clients.withClient(host: host, address: address) { _ in }
        }
        // busy (in use) and the most recent idle one are kept.
        #expect(clients.count == 2)
        let keptC = try await clients.withClient(host: "c.example.com", address: address) { _ in made.overrides.withLock { $0.count } }
        #expect(keptC == 4, "c was kept, not made again")
        release.yield()
        release.finish()
        try await holding.value
        // Now idle, busy is the least recently used and goes when the next client comes.
        try await clients.withClient(host: "d.example.com", address: address) { _ in }
        #expect(clients.count == 2)
        let busyAgain = try await clients.withClient(host: "busy.example.com", address: address) { _ in made.overrides.withLock { $0.count } }
        #expect(busyAgain == 6, "busy was shut down and made again")
        await clients.shutdown()
    }
}
