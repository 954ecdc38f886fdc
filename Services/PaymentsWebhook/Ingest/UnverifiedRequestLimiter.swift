import Foundation
import Synchronization

/// Per-source budget of requests that failed signature verification (a token bucket per source).
///
/// Each failed verification spends a token; a source with no token left is refused with 429 before its
/// body is read or verified, so a flood of forged webhooks costs little and cannot crowd out the real
/// senders, whose requests verify and spend nothing. Tokens come back at `refillPerMinute`.
///
/// The state is per process (each replica limits on its own) and bounded: past `maximumSources`
/// tracked sources, sources whose bucket has refilled are forgotten first, then the oldest.
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
    private let maximumSources: Int
    private let buckets = Mutex<[String: Bucket]>([:])

    init(limits: Limits, maximumSources: Int = 100_000) {
        self.limits = limits
        self.maximumSources = maximumSources
    }

    /// Whether `source` may send another request now; when not, how long until it may (for `Retry-After`).
    func admission(for source: String, now: ContinuousClock.Instant = .now) -> Duration? {
        buckets.withLock { buckets in
            guard var bucket = buckets[source] else { return nil }
            refill(&bucket, now: now)
            buckets[source] = bucket
            guard bucket.tokens < 1 else { return nil }
            return .milliseconds(Int64(((1 - bucket.tokens) / Double(limits.refillPerMinute) * 60_000).rounded(.up)))
        }
    }

    /// Spends one of `source`'s tokens for a request that failed verification.
    func recordFailure(from source: String, now: ContinuousClock.Instant = .now) {
        buckets.withLock { buckets in
            var bucket = buckets[source] ?? Bucket(tokens: Double(limits.burst), updated: now)
            refill(&bucket, now: now)
            bucket.tokens = max(0, bucket.tokens - 1)
            buckets[source] = bucket
            if buckets.count > maximumSources { evict(&buckets, now: now) }
        }
    }

    /// How many sources are tracked (for tests and metrics).
    var trackedSources: Int { buckets.withLock { $0.count } }

    private func refill(_ bucket: inout Bucket, now: ContinuousClock.Instant) {
        let elapsed = now - bucket.updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard seconds > 0 else { return }
        bucket.tokens = min(Double(limits.burst), bucket.tokens + seconds * Double(limits.refillPerMinute) / 60)
        bucket.updated = now
    }

    private func evict(_ buckets: inout [String: Bucket], now: ContinuousClock.Instant) {
        let full = Double(limits.burst)
        for (source, var bucket) in buckets {
            refill(&bucket, now: now)
            if bucket.tokens >= full { buckets[source] = nil }
        }
        guard buckets.count > maximumSources else { return }
        let oldest = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(buckets.count - maximumSources)
        for (source, _) in oldest { buckets[source] = nil }
    }
}
