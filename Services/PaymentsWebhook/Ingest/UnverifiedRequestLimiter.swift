import Foundation
import SharedModel
import Synchronization

/// Per-source budget of requests that fail signature verification (a token bucket per source).
///
/// A request spends one of its source's tokens before its signature is checked, and a request whose
/// signature verifies gets its token back; so the number of failed verifications a source can cause is
/// bounded by its tokens even when its forgeries arrive all at once. A source with no token left is
/// refused with 429 before its body is read (``admission(for:now:)``), and again after the read when
/// concurrent forgeries spent the last token meanwhile (``spend(from:now:)``). Real senders get every
/// token back and are never limited by their own success. Tokens come back at `refillPerMinute`.
///
/// A source is one IPv4 address or one IPv6 /64 network (``ClientSource``). The state is per process
/// (each replica limits on its own) and bounded: past `maximumSources` tracked sources the least
/// recently seen one is forgotten, in O(1) (a forgotten source starts again with a full bucket). A
/// bucket that is full again is dropped at once, so sources whose requests verify occupy no room.
final class UnverifiedRequestLimiter: Sendable {
    struct Limits: Sendable, Equatable {
        var burst: Int
        var refillPerMinute: Int
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let limits: Limits
    private let buckets: Mutex<LeastRecentlyUsedMap<ClientSource, Bucket>>

    init(limits: Limits, maximumSources: Int = 100_000) {
        self.limits = limits
        buckets = Mutex(LeastRecentlyUsedMap(capacity: maximumSources))
    }

    /// Whether `source` has a token left, without spending it (the check before a body is read); when
    /// not, how long until it has one (for `Retry-After`).
    func admission(for source: ClientSource, now: ContinuousClock.Instant = .now) -> Duration? {
        buckets.withLock { buckets in
            guard var bucket = buckets.value(for: source) else { return nil }
            refill(&bucket, now: now)
            buckets.set(bucket, for: source)
            return wait(for: bucket)
        }
    }

    /// Spends one of `source`'s tokens for a request about to be verified: nil when spent, otherwise how
    /// long until a token is available (the request is then refused unverified). The check and the
    /// spending are one critical section, so concurrent requests cannot all take the last token.
    func spend(from source: ClientSource, now: ContinuousClock.Instant = .now) -> Duration? {
        buckets.withLock { buckets in
            var bucket = buckets.value(for: source) ?? Bucket(tokens: Double(limits.burst), updated: now)
            refill(&bucket, now: now)
            let wait = wait(for: bucket)
            if wait == nil { bucket.tokens -= 1 }
            buckets.set(bucket, for: source)
            return wait
        }
    }

    /// Gives back the token ``spend(from:now:)`` took for a request whose signature verified. A bucket
    /// that is full again is forgotten: it is the same as no bucket.
    func refund(to source: ClientSource, now: ContinuousClock.Instant = .now) {
        buckets.withLock { buckets in
            guard var bucket = buckets.value(for: source) else { return }
            refill(&bucket, now: now)
            bucket.tokens = min(Double(limits.burst), bucket.tokens + 1)
            if bucket.tokens >= Double(limits.burst) {
                buckets.removeValue(for: source)
            } else {
                buckets.set(bucket, for: source)
            }
        }
    }

    /// How many sources are tracked (for tests and metrics).
    var trackedSources: Int { buckets.withLock { $0.count } }

    /// The tracked sources from the most to the least recently seen (for tests).
    var sourcesByRecency: [ClientSource] { buckets.withLock { $0.keysByRecency } }

    /// Nil when `bucket` holds a token, otherwise how long until it does.
    private func wait(for bucket: Bucket) -> Duration? {
        guard bucket.tokens < 1 else { return nil }
        return .milliseconds(Int64(((1 - bucket.tokens) / Double(limits.refillPerMinute) * 60_000).rounded(.up)))
    }

    private func refill(_ bucket: inout Bucket, now: ContinuousClock.Instant) {
        let elapsed = now - bucket.updated
        let seconds = elapsed.timeInterval
        guard seconds > 0 else { return }
        bucket.tokens = min(Double(limits.burst), bucket.tokens + seconds * Double(limits.refillPerMinute) / 60)
        bucket.updated = now
    }
}
