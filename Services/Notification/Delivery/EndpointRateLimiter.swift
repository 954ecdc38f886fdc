import Foundation
import Synchronization

/// Spaces one process's attempts to an endpoint by its `rate_limit_per_s` (a virtual-scheduling
/// limiter: each attempt takes the next free 1/rate slot). With several instances each keeps its own
/// spacing, so an endpoint sees at most instances x rate attempts per second; the per-endpoint
/// concurrency limit, enforced through the database's leases, holds across instances.
final class EndpointRateLimiter: Sendable {
    private let nextFree = Mutex<[UUID: ContinuousClock.Instant]>([:])

    /// How long to wait before an attempt to `endpoint` may start (zero without a limit), reserving
    /// that slot; or, when the wait would be longer than `maximumWait`, `.later(after:)` without
    /// reserving (the caller gives the delivery back, due then, instead of holding its claim).
    func reserve(_ endpoint: UUID, perSecond rate: Int?, maximumWait: Duration) -> Reservation {
        guard let rate, rate > 0 else { return .now(wait: .zero) }
        let now = ContinuousClock.now
        let interval = Duration.seconds(1) / rate
        return nextFree.withLock { slots in
            let start = max(now, slots[endpoint] ?? now)
            guard start - now <= maximumWait else { return .later(after: start - now) }
            slots[endpoint] = start + interval
            if slots.count > 10_000 { slots = slots.filter { $0.value > now } }
            return .now(wait: start - now)
        }
    }

    enum Reservation: Equatable {
        case now(wait: Duration)
        case later(after: Duration)
    }
}
