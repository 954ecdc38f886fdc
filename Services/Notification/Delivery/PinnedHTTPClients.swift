import AsyncHTTPClient
import ServiceKit
import Synchronization

/// HTTP clients that connect a host name to one address given to them, never to what the name
/// resolves to when they connect: async-http-client's `dnsOverride`, which also keeps the name for
/// TLS (SNI and the certificate's check) and the `Host` header. The override is fixed per client, so
/// there is one client per host and address; its keep-alive connections are reused while the name
/// keeps resolving there, and a name that starts resolving elsewhere gets a client of its own.
///
/// This is what closes the DNS rebinding window of ``EndpointURLPolicy``: an attempt connects to the
/// address its own check resolved and accepted, with no second resolution in between.
///
/// At most `capacity` clients are kept: beyond that the least recently used ones that no attempt is
/// using are shut down (their idle connections closed). Attempts in flight keep their client.
final class PinnedHTTPClients: Sendable {
    struct Key: Hashable, Sendable {
        /// The host as the URL names it (what async-http-client looks up in `dnsOverride`).
        let host: String
        let address: String
    }

    private struct Entry {
        let client: HTTPClient
        var inUse = 0
        var lastUsed: UInt64
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var uses: UInt64 = 0
        var closed = false
    }

    private let capacity: Int
    private let makeClient: @Sendable (_ dnsOverride: [String: String]) -> HTTPClient
    private let state = Mutex(State())

    /// `makeClient` builds a client with the given `dnsOverride` (and otherwise the sender's settings).
    init(capacity: Int = 256, makeClient: @escaping @Sendable (_ dnsOverride: [String: String]) -> HTTPClient) {
        self.capacity = capacity
        self.makeClient = makeClient
    }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the service is shutting down" }
    }

    /// Runs `body` with the client that connects `host` to `address`, created when there is none.
    func withClient<T>(host: String, address: IPAddress, _ body: (HTTPClient) async throws -> T) async throws -> T {
        let key = Key(host: host, address: address.description)
        let (client, evicted) = try state.withLock { state throws(Closed) -> (HTTPClient, [HTTPClient]) in
            guard !state.closed else { throw Closed() }
            state.uses += 1
            if var entry = state.entries[key] {
                entry.inUse += 1
                entry.lastUsed = state.uses
                state.entries[key] = entry
                return (entry.client, [])
            }
            let client = makeClient([host: key.address])
            state.entries[key] = Entry(client: client, inUse: 1, lastUsed: state.uses)
            return (client, Self.evictIdle(from: &state, beyond: capacity))
        }
        for old in evicted { try? await old.shutdown() }
        defer {
            state.withLock { state in
                if var entry = state.entries[key] {
                    entry.inUse -= 1
                    state.entries[key] = entry
                }
            }
        }
        return try await body(client)
    }

    /// The number of clients kept (for tests).
    var count: Int { state.withLock { $0.entries.count } }

    /// Shuts every client down; attempts after this fail with ``Closed``.
    func shutdown() async {
        let clients = state.withLock { state in
            state.closed = true
            defer { state.entries = [:] }
            return state.entries.values.map(\.client)
        }
        for client in clients { try? await client.shutdown() }
    }

    /// Removes the least recently used clients no attempt is using until at most `capacity` are kept
    /// (or only clients in use are left), and returns them to be shut down.
    private static func evictIdle(from state: inout State, beyond capacity: Int) -> [HTTPClient] {
        let excess = state.entries.count - capacity
        guard excess > 0 else { return [] }
        let idle = state.entries.filter { $0.value.inUse == 0 }.sorted { $0.value.lastUsed < $1.value.lastUsed }.prefix(excess)
        for (key, _) in idle { state.entries[key] = nil }
        return idle.map(\.value.client)
    }
}
