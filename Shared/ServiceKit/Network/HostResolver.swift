import Dispatch
import Foundation

/// Turns a host name into its addresses. Injected wherever a name is resolved, so tests can make a
/// name point anywhere (there is no DNS server in the test environment) and change it between calls.
public protocol HostResolver: Sendable {
    /// Every address `host` resolves to; throws when it resolves to none.
    func addresses(of host: String) async throws -> [IPAddress]
}

/// Why a host name did not resolve.
public struct HostResolutionError: Error, CustomStringConvertible, Sendable {
    public let host: String
    public let reason: String

    public init(host: String, reason: String) {
        self.host = host
        self.reason = reason
    }

    public var description: String { "\(host) does not resolve: \(reason)" }
}

/// The system's resolver (`getaddrinfo`: /etc/hosts, then DNS). `getaddrinfo` blocks, so each call
/// runs on a Dispatch queue, never on Swift's cooperative pool (two blocked calls there would stall
/// every request handler of the process).
public struct SystemHostResolver: HostResolver {
    private static let queue = DispatchQueue(label: "host-resolver", qos: .utility, attributes: .concurrent)

    public init() {}

    public func addresses(of host: String) async throws -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        return try await withCheckedThrowingContinuation { continuation in
            Self.queue.async {
                continuation.resume(with: Result { try Self.lookUp(host) })
            }
        }
    }

    private static func lookUp(_ host: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            throw HostResolutionError(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let address = entry.pointee.ai_addr, let parsed = Self.address(address, family: entry.pointee.ai_family),
                !addresses.contains(parsed)
            {
                addresses.append(parsed)
            }
            cursor = entry.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw HostResolutionError(host: host, reason: "no IPv4 or IPv6 address") }
        return addresses
    }

    private static func address(_ socketAddress: UnsafeMutablePointer<sockaddr>, family: Int32) -> IPAddress? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written: UnsafePointer<CChar>?
        switch family {
        case AF_INET:
            written = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var address = pointer.pointee.sin_addr
                return inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
            }
        case AF_INET6:
            written = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                var address = pointer.pointee.sin6_addr
                return inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
            }
        default:
            return nil
        }
        guard written != nil else { return nil }
        let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return IPAddress(String(decoding: text, as: UTF8.self))
    }
}
