import Foundation
import ServiceKit

/// Which URLs deliveries may go to (DESIGN.md, Notification). A subscriber names the URL, so without
/// this policy anyone with the admin API could make the service call into the operator's own network
/// (server-side request forgery): the database, the cloud's metadata service, admin consoles.
///
/// - `http` or `https` only, with a host, without credentials (`user:pass@`: they would be sent to
///   the endpoint and shown in every listing), at most 2,048 characters, no fragment.
/// - Every address the host resolves to must be a public unicast address (``IPAddress/nonPublicReason``),
///   checked when the endpoint is created or changed and again before every attempt (a name can start
///   resolving elsewhere after it was checked: DNS rebinding). `allowsPrivateNetworks`
///   (`NOTIFICATION_ALLOW_PRIVATE_NETWORKS=true`, for local receivers) turns the address check off.
///
/// With the address check on, the check returns where an attempt connects: the first address the
/// name resolved to, which the sender pins the connection to (``PinnedHTTPClients``), so the HTTP
/// client never resolves the name again and a name that changes between the check and the
/// connection cannot reach an address that was not checked. With private networks allowed nothing is
/// resolved or pinned: the HTTP client resolves the name and tries each of its addresses, as a local
/// receiver on `localhost` (`::1` first on some systems, while it listens on 127.0.0.1) needs.
struct EndpointURLPolicy: Sendable {
    let allowsPrivateNetworks: Bool
    let resolver: any HostResolver
    /// Addresses accepted as if they were public: empty, except in tests, whose receivers can only
    /// listen on loopback.
    var treatedAsPublic: Set<IPAddress> = []

    /// Why a URL was refused: the API answers 422 `endpoint_url_not_allowed` with this message.
    struct Refusal: Error, Equatable, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    static let maximumLength = 2_048

    /// The URL's shape alone (no resolution): what the API checks before anything else.
    static func parse(_ text: String) throws(Refusal) -> URLComponents {
        guard text.utf8.count <= maximumLength else { throw Refusal(reason: "the URL is longer than \(maximumLength) characters") }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw Refusal(reason: "not an absolute URL")
        }
        guard scheme == "http" || scheme == "https" else { throw Refusal(reason: "only http and https URLs are allowed, not \(scheme)") }
        guard let host = components.host, !host.isEmpty else { throw Refusal(reason: "the URL has no host") }
        guard components.user == nil, components.password == nil else {
            throw Refusal(reason: "credentials in the URL are not allowed; the endpoint verifies the webhook signature instead")
        }
        guard components.fragment == nil else { throw Refusal(reason: "the URL has a fragment") }
        if let port = components.port, !(1...65_535).contains(port) { throw Refusal(reason: "the port is outside 1-65535") }
        return components
    }

    /// Checks `text` fully (its shape and where its host resolves now) and returns the address an
    /// attempt connects to: the first one the name resolved to; nil when the host is an IP address
    /// itself, or when private networks are allowed (nothing is resolved then).
    @discardableResult
    func check(_ text: String) async throws(Refusal) -> IPAddress? {
        let components = try Self.parse(text)
        guard !allowsPrivateNetworks, var host = components.host else { return nil }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if let literal = IPAddress(host) {
            try refuseNonPublic([literal], host: host)
            return nil
        }
        // `http://2130706433/` or `http://0x7f.1/` are loopback to many resolvers; never a real name.
        guard !Self.isNumericLooking(host) else {
            throw Refusal(reason: "the host \(host) is a numeric form that is not a dotted-quad IPv4 or an IPv6 address")
        }
        let addresses: [IPAddress]
        do {
            addresses = try await resolver.addresses(of: host)
        } catch {
            throw Refusal(reason: "the host \(host) does not resolve")
        }
        try refuseNonPublic(addresses, host: host)
        return addresses.first
    }

    private func refuseNonPublic(_ addresses: [IPAddress], host: String) throws(Refusal) {
        for address in addresses where !treatedAsPublic.contains(address) {
            if let reason = address.nonPublicReason {
                throw Refusal(reason: "the host \(host) resolves to \(reason); deliveries go to public addresses only")
            }
        }
    }

    /// Hosts made of digits, dots and `x` (hex) only: alternative spellings of IPv4 addresses.
    private static func isNumericLooking(_ host: String) -> Bool {
        let lowered = host.lowercased()
        let lastLabel = lowered.split(separator: ".").last ?? ""
        return lastLabel.allSatisfy { $0.isHexDigit || $0 == "x" } && lastLabel.first?.isNumber == true
    }
}
