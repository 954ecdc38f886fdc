import Foundation
import Logging
import Metrics
import Redis
import Synchronization

/// Spaces the attempts to an endpoint by its `rate_limit_per_s` across every instance of the service
/// (a virtual-scheduling limiter: each attempt takes the endpoint's next free 1/rate slot).
///
/// The next free slot lives in Redis (`notification:rate:<endpoint id>`, in microseconds of Redis's
/// own clock, so the instances' clocks do not matter), and one script reads and advances it, so two
/// instances never take the same slot: an endpoint sees at most its rate, however many instances
/// deliver to it. The key expires a second after its last slot has passed.
///
/// While Redis cannot be reached, each process spaces its own attempts (an endpoint may then see up
/// to instances x rate), counts `notification_rate_limit_local_total` and logs a warning at most once
/// a minute: deliveries go on without Redis, as the rest of the dispatcher does.
final class EndpointRateLimiter: Sendable {
    private let redis: RedisClient?
    private let logger: Logger
    private let local = LocalEndpointRateLimiter()
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)
    private static let localReservations = Counter(label: "notification_rate_limit_local_total")

    /// KEYS[1]: the endpoint's next free slot. ARGV[1]: a slot's length; ARGV[2]: the longest wait to
    /// reserve (microseconds). Returns {1, wait} with the slot reserved, or {0, wait} when the wait
    /// would be longer than ARGV[2] (nothing reserved). The slot is written with `%.0f`: Lua's own
    /// number-to-string keeps 14 digits, and microseconds since 1970 have 16.
    static let script = RedisScript(
        """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local free = tonumber(redis.call('GET', KEYS[1]) or '0')
        if free < now then free = now end
        local wait = free - now
        if wait > tonumber(ARGV[2]) then return {0, wait} end
        local following = free + tonumber(ARGV[1])
        redis.call('SET', KEYS[1], string.format('%.0f', following), 'PX', math.floor((following - now) / 1000) + 1000)
        return {1, wait}
        """)

    /// `redis` nil: this process's own spacing only (tests of the dispatcher without Redis).
    init(redis: RedisClient?, logger: Logger) {
        self.redis = redis
        self.logger = logger
    }

    /// How long to wait before an attempt to `endpoint` may start (zero without a limit), reserving
    /// that slot; or, when the wait would be longer than `maximumWait`, `.later(after:)` without
    /// reserving (the caller gives the delivery back, due then, instead of holding its claim).
    func reserve(_ endpoint: UUID, perSecond rate: Int?, maximumWait: Duration) async -> Reservation {
        guard let rate, rate > 0 else { return .now(wait: .zero) }
        guard let redis else { return local.reserve(endpoint, perSecond: rate, maximumWait: maximumWait) }
        do {
            let reply = try await redis.evaluate(
                Self.script, keys: [RedisArgument("notification:rate:\(endpoint.lowercasedString)")],
                arguments: [RedisArgument(1_000_000 / Int64(rate)), RedisArgument(Int64(maximumWait.timeInterval * 1_000_000))])
            guard let values = reply.array?.compactMap(\.integer), values.count == 2 else {
                throw RedisError(code: .unexpectedReply, message: "the rate limit script answered \(reply)")
            }
            let wait = Duration.microseconds(values[1])
            return values[0] == 1 ? .now(wait: wait) : .later(after: wait)
        } catch {
            Self.localReservations.increment()
            let now = ContinuousClock.now
            let warn = lastWarning.withLock { last in
                guard last.map({ now - $0 >= .seconds(60) }) ?? true else { return false }
                last = now
                return true
            }
            if warn {
                logger.warning(
                    "the endpoints' shared rate limits are unavailable; this process spaces its own attempts until Redis answers",
                    metadata: ["error": "\(error)"])
            }
            return local.reserve(endpoint, perSecond: rate, maximumWait: maximumWait)
        }
    }

    enum Reservation: Equatable {
        case now(wait: Duration)
        case later(after: Duration)
    }
}

/// One process's spacing of its attempts to each endpoint: ``EndpointRateLimiter``'s fallback.
final class LocalEndpointRateLimiter: Sendable {
    private let nextFree = Mutex<[UUID: ContinuousClock.Instant]>([:])

    func reserve(_ endpoint: UUID, perSecond rate: Int, maximumWait: Duration) -> EndpointRateLimiter.Reservation {
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
}
