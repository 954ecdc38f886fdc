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

/// Wakes a waiting loop early: `ring` ends the current (or the next) `wait`.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when rung (at once if rung since the last wait) or after `timeout`.
    func wait(upTo timeout: Duration) async {
        if state.withLock({ state in
            defer { state.rung = false }
            return state.rung
        }) {
            return
        }
        let timer = Task {
            // A cancelled sleep throws: the wait already ended, so nothing rings.
            do {
                try await Task.sleep(for: timeout)
                self.ring()
            } catch {}
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.rung {
                    state.rung = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
        timer.cancel()
    }
}
