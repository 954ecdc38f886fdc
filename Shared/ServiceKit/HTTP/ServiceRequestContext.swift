import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SharedModel

/// Who is calling, as established by ``AuthenticationMiddleware``.
public enum Principal: Sendable, Equatable {
    /// A client application holding one of `API_KEYS`; it passes the authenticated customer id itself.
    /// `id` is the client's name (`name:key` entries) or names a bare key without revealing it (`key_` +
    /// the first 16 bytes of its SHA-256, in hex), so per-client records such as idempotency keys and
    /// the bookings a client may see never store the secret.
    case client(id: String)
    /// An operator holding `ADMIN_TOKEN`.
    case admin

    /// A stable name of the caller for per-client records: the client's key digest, or `admin`.
    public var id: String {
        switch self {
        case .client(let id): id
        case .admin: "admin"
        }
    }
}

/// The request context of every service: correlation id, caller, and body limit.
public struct ServiceRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// From `X-Request-Id`, or created; carried through logs and every event the request causes.
    public var correlationID: String
    /// Set by ``AuthenticationMiddleware`` on protected routes.
    public var principal: Principal?
    /// The largest body `request.decode` collects; set by ``BodyLimitMiddleware``.
    public var maxUploadSize: Int
    /// The peer's socket address (`nil` for in-process test requests).
    public let peerSocketAddress: SocketAddress?
    /// The peer's IP address (`nil` for in-process test requests); identifies a request's source,
    /// e.g. for the webhook routes' limit on unverified requests. Rendered when asked for: rendering
    /// it for every request (`inet_ntop`) was 0.5-1% of the hold route's CPU.
    public var peerAddress: String? { peerSocketAddress?.ipAddress }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.correlationID = ""
        self.principal = nil
        self.maxUploadSize = 1 << 20
        self.peerSocketAddress = source.channel.remoteAddress
    }

    public var requestDecoder: PlatformRequestDecoder { PlatformRequestDecoder() }
    public var responseEncoder: JSONEncoder { JSONEncoder.platform }
}
