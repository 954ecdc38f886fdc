import Hummingbird
import Metrics
import NIOCore
import Synchronization

/// Admission control: a service handles at most `maximum` requests at once. Up to `maximumQueued`
/// more wait for a turn, first come first served; a request beyond those is refused at once (the
/// middleware answers 503 `overloaded` with `Retry-After`).
///
/// A safety valve for overload: below capacity the limit is not reached (in flight = rate x latency).
/// Past it, a service that takes every request at once lets memory and every request's latency grow
/// with a queue nobody sees, until clients time out behind work that will not finish in time. Here
/// the wait is ordered and bounded (about `maximumQueued` / throughput), and past that the client
/// hears at once that it should retry (Stripe and our own clients retry a 503; booking requests carry
/// idempotency keys).
package final class RequestLimit: Sendable {
    /// The most requests handled at once.
    package let maximum: Int
    /// The most requests waiting for a turn.
    package let maximumQueued: Int

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var inFlight = 0
        var queue = CircularBuffer<Waiter>()
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    private let queued = Gauge(label: "http_requests_queued")
    private let shed = Counter(label: "http_requests_shed_total")

    package init(maximum: Int, maximumQueued: Int) {
        self.maximum = max(1, maximum)
        self.maximumQueued = max(0, maximumQueued)
    }

    package enum Admission: Sendable, Equatable {
        /// Handle the request, then call ``release()``.
        case admitted
        /// Too many wait already: refuse the request.
        case refused
    }

    /// Requests being handled, and requests waiting (for tests and diagnostics).
    package var counts: (inFlight: Int, queued: Int) {
        state.withLock { ($0.inFlight, $0.queue.count) }
    }

    /// Takes a turn: at once when fewer than `maximum` are in flight, else after the requests queued
    /// before it, or `.refused` when the queue is full. Throws `CancellationError` when the caller's
    /// task is cancelled while it waits (it then holds no turn).
    package func admit() async throws -> Admission {
        let immediate: Admission? = state.withLock { state in
            if state.inFlight < maximum {
                state.inFlight += 1
                return .admitted
            }
            return state.queue.count >= maximumQueued ? .refused : nil
        }
        if let immediate {
            if immediate == .refused { shed.increment() }
            return immediate
        }
        let id = state.withLock { state in
            state.nextID &+= 1
            return state.nextID
        }
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    // Decided again under the lock: a turn may have been released meanwhile, the queue
                    // may have filled, and the task may have been cancelled (its handler then found no
                    // waiter to remove).
                    enum Now { case go, refuse, cancelled, wait(Int) }
                    let now: Now = state.withLock { state in
                        if Task.isCancelled { return .cancelled }
                        if state.inFlight < maximum {
                            state.inFlight += 1
                            return .go
                        }
                        if state.queue.count >= maximumQueued { return .refuse }
                        state.queue.append(Waiter(id: id, continuation: continuation))
                        return .wait(state.queue.count)
                    }
                    switch now {
                    case .go: continuation.resume()
                    case .refuse: continuation.resume(throwing: Refused())
                    case .cancelled: continuation.resume(throwing: CancellationError())
                    case .wait(let count): queued.record(count)
                    }
                }
            } onCancel: {
                let waiter: Waiter? = state.withLock { state in
                    guard let index = state.queue.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.queue.remove(at: index)
                }
                if let waiter {
                    queued.record(counts.queued)
                    waiter.continuation.resume(throwing: CancellationError())
                }
            }
            return .admitted
        } catch is Refused {
            shed.increment()
            return .refused
        }
    }

    /// Ends a turn taken with ``admit()``: the longest-waiting request, if any, takes it over.
    package func release() {
        let (next, waiting): (Waiter?, Int) = state.withLock { state in
            if let next = state.queue.popFirst() { return (next, state.queue.count) }
            state.inFlight -= 1
            return (nil, 0)
        }
        if let next {
            queued.record(waiting)
            next.continuation.resume()
        }
    }

    private struct Refused: Error {}
}

/// Applies a ``RequestLimit`` to every route but the probes and `/metrics`, which must answer while
/// the service is saturated (a readiness probe that times out would take a busy instance out of
/// service and move its load onto the others).
///
/// A request takes its turn once its body has arrived: the body is read first (up to the body limit,
/// so this runs inside ``BodyLimitMiddleware``; a stalled sender is cut off by `HTTP_IDLE_TIMEOUT`),
/// so clients that send slowly hold connections, as before, but never turns. A refused request gets
/// 503 `overloaded` with `Retry-After: 1`: nothing was done, so retrying it is always safe.
public struct RequestLimitMiddleware: RouterMiddleware {
    public typealias Context = ServiceRequestContext
    let limit: RequestLimit

    package init(limit: RequestLimit) {
        self.limit = limit
    }

    static let unlimitedPaths: Set<String> = ["/healthz", "/readyz", "/metrics"]

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.unlimitedPaths.contains(request.uri.path) { return try await next(request, context) }
        var request = request
        if request.headers[.transferEncoding] != nil || request.headers[.contentLength].map({ $0 != "0" }) == true {
            _ = try await request.collectBody(upTo: context.maxUploadSize)
        }
        let admission: RequestLimit.Admission
        do {
            admission = try await limit.admit()
        } catch is CancellationError {
            // Cancelled while waiting (the server is shutting down): not taken, so the client may retry.
            admission = .refused
        }
        guard admission == .admitted else { throw APIError.overloaded(retryAfterSeconds: 1) }
        defer { limit.release() }
        return try await next(request, context)
    }
}
