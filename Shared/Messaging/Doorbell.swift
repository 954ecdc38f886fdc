import Synchronization

/// Wakes a waiting loop early: `ring` ends the current (or the next) `wait`.
public final class Doorbell: Sendable {
    public init() {}

    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    public func ring() {
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

    /// Whether it was rung since the last wait (or the last call), without waiting; the ring is used up.
    public func takeRing() -> Bool {
        state.withLock { state in
            defer { state.rung = false }
            return state.rung
        }
    }

    /// Returns when rung (at once if rung since the last wait), after `timeout`, or when the calling
    /// task is cancelled.
    public func wait(upTo timeout: Duration) async {
        await withTaskCancellationHandler {
            await waitForRing(upTo: timeout)
        } onCancel: {
            ring()
        }
    }

    private func waitForRing(upTo timeout: Duration) async {
        if takeRing() { return }
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
