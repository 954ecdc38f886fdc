import Metrics
import NIOCore
import Synchronization

/// The HTTP connections a server holds at once, shared by every connection's ``ConnectionLimitHandler``.
package final class ConnectionLimit: Sendable {
    /// The most connections served at once.
    package let maximum: Int
    private let open = Atomic<Int>(0)
    private let rejected = Counter(label: "http_connections_rejected_total")

    /// A limit of `maximum` connections (at least 1).
    package init(maximum: Int) {
        self.maximum = max(1, maximum)
    }

    /// Connections currently counted.
    package var current: Int { open.load(ordering: .relaxed) }

    /// Counts a new connection; false (and not counted) when the server is full.
    func admit() -> Bool {
        if open.wrappingAdd(1, ordering: .relaxed).newValue <= maximum { return true }
        open.wrappingSubtract(1, ordering: .relaxed)
        rejected.increment()
        return false
    }

    /// Uncounts a connection that was admitted.
    func release() {
        open.wrappingSubtract(1, ordering: .relaxed)
    }
}

/// Closes a new connection at once when the server already holds `HTTP_MAX_CONNECTIONS`, so slow or
/// silent clients cannot take every file descriptor and event-loop slot. Added to each connection's
/// pipeline; the count drops when an admitted connection's pipeline is torn down.
final class ConnectionLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let limit: ConnectionLimit
    private var admitted = false

    init(limit: ConnectionLimit) {
        self.limit = limit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        admitted = limit.admit()
        if !admitted { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if admitted { limit.release() }
        admitted = false
    }
}
