import Foundation
import Hummingbird
import Logging
import Metrics
import Redis
import ServiceKit
import SharedModel

/// A token bucket's rate: up to `capacity` requests at once, refilled evenly over `period`
/// (`capacity / period` tokens per second).
struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    let capacity: Int
    let period: Duration

    var description: String { "\(capacity)/\(period == .seconds(1) ? "s" : period == .seconds(60) ? "m" : "\(period)")" }
}

/// The abuse limits of `POST /v1/holds` (issue 17, item 4), per customer:
/// - `maximumHeldSeats`: seats held at once, in live holds and in bookings awaiting payment
///   (`MAX_HELD_SEATS_PER_CUSTOMER`);
/// - `attempts`: hold requests, failed ones included (`HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE`).
struct CustomerHoldLimits: Sendable, Equatable {
    var maximumHeldSeats: Int
    var attempts: RateLimit
}

/// `API_KEY_RATE_LIMITS`: `name=100/s,other=20/m,*=500/s`. A client application (`API_KEYS` entry
/// `name:key`) gets its own token bucket at its named rate, or at the `*` rate when it is not named;
/// with neither, it is not limited. `s` is per second, `m` per minute; the number is both the rate
/// per unit and the burst.
struct APIKeyRateLimits: Sendable, Equatable {
    var clients: [String: RateLimit] = [:]
    /// The rate of every client not named (`*`).
    var others: RateLimit?

    var isEmpty: Bool { clients.isEmpty && others == nil }

    func limit(for client: String) -> RateLimit? { clients[client] ?? others }

    static func parse(_ text: String, name: String = "API_KEY_RATE_LIMITS") throws(ConfigurationError) -> APIKeyRateLimits {
        var limits = APIKeyRateLimits()
        let invalid = ConfigurationError(
            name: name, reason: "must be comma-separated `client=N/s` or `client=N/m` entries (`*` for every other client)")
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw invalid }
            let client = parts[0].trimmingCharacters(in: .whitespaces)
            let rate = parts[1].trimmingCharacters(in: .whitespaces).split(separator: "/", omittingEmptySubsequences: false)
            guard !client.isEmpty, rate.count == 2, let count = Int(rate[0]), (1...1_000_000).contains(count) else { throw invalid }
            let period: Duration
            switch rate[1] {
            case "s": period = .seconds(1)
            case "m": period = .seconds(60)
            default: throw invalid
            }
            let limit = RateLimit(capacity: count, period: period)
            if client == "*" {
                guard limits.others == nil else { throw ConfigurationError(name: name, reason: "names `*` twice") }
                limits.others = limit
            } else {
                guard limits.clients.updateValue(limit, forKey: client) == nil else {
                    throw ConfigurationError(name: name, reason: "names a client twice")
                }
            }
        }
        guard !limits.isEmpty else { throw invalid }
        return limits
    }
}

/// The counters of the abuse limits, registered at zero when the service starts.
struct HoldLimitMetrics: Sendable {
    /// `booking_hold_limit_rejections_total{reason}`: holds refused by a per-customer limit,
    /// `held_seats` (409 `hold_limit_reached`) or `hold_attempts` (429 `rate_limited`).
    let heldSeats: Counter
    let holdAttempts: Counter

    init(apiKeyClients: some Sequence<String> = []) {
        heldSeats = Counter(label: "booking_hold_limit_rejections_total", dimensions: [("reason", "held_seats")])
        holdAttempts = Counter(label: "booking_hold_limit_rejections_total", dimensions: [("reason", "hold_attempts")])
        for client in apiKeyClients { _ = Self.apiKeyRejections(client) }
    }

    /// `booking_api_key_rate_limited_total{client}`: requests refused by `API_KEY_RATE_LIMITS`.
    static func apiKeyRejections(_ client: String) -> Counter {
        Counter(label: "booking_api_key_rate_limited_total", dimensions: [("client", client)])
    }
}

/// The per-customer ledger of held seats and the token buckets, in Redis.
///
/// One key per customer, `booking:{customer:C}:held` (the hash tag keeps whatever the id holds in one
/// slot), holds both limits:
/// - hold id -> `<seats>:<until ms>`, one field per live hold or booking awaiting payment; fields past
///   `until` are pruned by the next reservation;
/// - `~tokens` and `~at` (ms): the hold-attempt token bucket (no hold id starts with `~`).
/// The key lives until its latest field's `until`, and at least as long as the bucket takes to refill.
/// The bucket was a key of its own (`booking:{customer:C}:attempts`) until 2026-12-06: one hash costs
/// Redis about 10 µs per admission instead of 14 (redis-benchmark, 64 clients). During a rolling
/// deploy from an older version its pods count attempts in that key and prune the `~` fields as
/// malformed entries, so a customer may make up to twice the attempts until the roll ends; the
/// held-seat count is the same in both (docs/operations.md, section 8).
/// A client application's bucket is `booking:{client:<name>}:requests`.
///
/// A hold's seat keys live under its event's hash tag, so the reservation here and the hold there are
/// two atomic steps: reserve first (the check and the increment in one script), then hold, and give
/// the reservation back when the hold is refused. Losing Redis loses the ledger and the buckets: the
/// limits start again from zero, which the design accepts for data Redis may lose.
extension SeatHoldStore {
    enum Admission: Sendable, Equatable {
        case reserved
        /// The customer's attempt bucket is empty; a token is back after `retryAfter`.
        case rateLimited(retryAfter: Duration)
        /// Reserving `requested` more seats would exceed the limit: `held` are held already.
        case limitReached(held: Int)
    }

    /// Counts one hold attempt of `customer` and, when its bucket had a token, reserves the hold's
    /// seats until `expiresAt` unless that exceeds `limits.maximumHeldSeats`; then, when it reserved,
    /// ``place(_:seats:customer:ttl:expiresAt:)`` right after it on the same shared connection
    /// (``RedisClient/evaluate(_:then:)``): one hand-off to and from the caller fewer per hold, the same
    /// two steps in the same order. `placement` is nil unless the admission reserved; its failure (e.g.
    /// the connection broke before its reply) leaves the reservation for the caller to give back.
    func admitAndPlace(
        _ reference: HoldReference, seats: [SeatID], customer: CustomerID, ttl: Duration, expiresAt: Date, limits: CustomerHoldLimits, now: Date
    ) async throws -> (admission: Admission, placement: Result<PlaceOutcome, any Error>?) {
        let admit = admitCall(reference.holdID, customer: customer, seats: seats.count, until: expiresAt, limits: limits, now: now)
        let place = placeCall(reference, seats: seats, customer: customer, ttl: ttl, expiresAt: expiresAt)
        let (reply, placed) = try await redis.evaluate(admit) { reply in
            reply.array?.first?.string == "reserved" ? place : nil
        }
        let admission = try Self.admission(reply)
        guard admission == .reserved else { return (admission, nil) }
        return (admission, placed.map { result in result.flatMap { reply in Result { try placeOutcome(reply, reference, seats: seats) } } })
    }

    private func admitCall(_ holdID: HoldID, customer: CustomerID, seats: Int, until: Date, limits: CustomerHoldLimits, now: Date) -> RedisScriptCall
    {
        RedisScriptCall(
            Self.admitScript, keys: [RedisArgument(heldKey(customer))],
            arguments: [
                RedisArgument(Self.milliseconds(now)), RedisArgument(limits.attempts.capacity),
                RedisArgument(limits.attempts.period.wholeMilliseconds),
                RedisArgument(holdID.description), RedisArgument(seats), RedisArgument(Self.milliseconds(until)),
                RedisArgument(limits.maximumHeldSeats),
            ])
    }

    private static func admission(_ reply: RedisReply) throws -> Admission {
        let parts = reply.array?.compactMap { $0.string } ?? []
        switch (parts.first, parts.count == 2 ? Int64(parts[1]) : nil) {
        case ("reserved", _): return .reserved
        case ("rate_limited", let wait?): return .rateLimited(retryAfter: .milliseconds(wait))
        case ("limit", let held?): return .limitReached(held: Int(held))
        default: throw UnexpectedHoldReply(reply: reply, expected: "an admission")
        }
    }

    /// Takes one token from `client`'s bucket: nil when there was one, else how long until there is.
    func takeToken(client: String, limit: RateLimit, now: Date) async throws -> Duration? {
        let reply = try await redis.evaluate(
            Self.bucketScript, keys: [RedisArgument("booking:{client:\(client)}:requests")],
            arguments: [RedisArgument(Self.milliseconds(now)), RedisArgument(limit.capacity), RedisArgument(limit.period.wholeMilliseconds)])
        let parts = reply.array?.compactMap { $0.string } ?? []
        switch (parts.first, parts.count == 2 ? Int64(parts[1]) : nil) {
        case ("ok", _): return nil
        case ("rate_limited", let wait?): return .milliseconds(wait)
        default: throw UnexpectedHoldReply(reply: reply, expected: "a token bucket answer")
        }
    }

    /// The seats `customer` holds now (live holds and bookings awaiting payment), for tests and logs.
    func heldSeatCount(customer: CustomerID, now: Date) async throws -> Int {
        let reply = try await redis.send("HVALS", RedisArgument(heldKey(customer)))
        let now = Self.milliseconds(now)
        return (reply.array ?? []).compactMap(\.string).reduce(0) { total, value in
            let parts = value.split(separator: ":")
            guard parts.count == 2, let seats = Int(parts[0]), let until = Int64(parts[1]), until > now else { return total }
            return total + seats
        }
    }

    /// What becomes of a hold's reservation when it turns into a booking.
    enum ReservationChange: Sendable, Equatable {
        /// A booking awaiting payment: its seats count until `until` (or until it leaves `pending_payment`).
        case extend(until: Date, now: Date)
        /// A free booking, confirmed at once: its seats stop counting.
        case release
    }

    /// The script call that applies `change` to the reservation of `holdID` (only an existing one is
    /// extended, so a confirmation or cancellation that got there first is not undone).
    func reservationCall(_ holdID: HoldID, customer: CustomerID, _ change: ReservationChange) -> RedisScriptCall {
        switch change {
        case .extend(let until, let now):
            RedisScriptCall(
                Self.extendScript, keys: [RedisArgument(heldKey(customer))],
                arguments: [RedisArgument(holdID.description), RedisArgument(Self.milliseconds(until)), RedisArgument(Self.milliseconds(now))])
        case .release:
            RedisScriptCall(Self.forgetScript, keys: [RedisArgument(heldKey(customer))], arguments: [RedisArgument(holdID.description)])
        }
    }

    /// Forgets the reservation of `holdID`: the hold was refused or released, or its booking left
    /// `pending_payment` (confirmed, cancelled, expired).
    func releaseReservation(_ holdID: HoldID, customer: CustomerID) async throws {
        _ = try await redis.send("HDEL", RedisArgument(heldKey(customer)), RedisArgument(holdID.description))
    }

    /// ``releaseReservation(_:customer:)`` after a committed change; a failure only logs (the field
    /// expires at its `until`, which bounds the over-count).
    func releaseReservationAfterCommit(_ reservation: HeldSeatsReservation, logger: Logger) async {
        do {
            try await releaseReservation(reservation.holdID, customer: reservation.customerID)
        } catch {
            logger.warning(
                "could not release the customer's held-seat reservation; it expires with the booking's deadline",
                metadata: ["customer_id": "\(reservation.customerID)", "error": "\(error)"])
        }
    }

    func heldKey(_ customer: CustomerID) -> String { "booking:{customer:\(customer.rawValue)}:held" }

    /// The start of both bucket scripts: ARGV[1] now ms, ARGV[2] capacity, ARGV[3] refill period ms.
    static let bucketArguments = """
        local now = tonumber(ARGV[1])
        local capacity = tonumber(ARGV[2])
        local period = tonumber(ARGV[3])

        """

    /// A token bucket's arithmetic, with `now`, `capacity`, `period` and the bucket's `tokens` and `at`
    /// in locals: refills it up to `now`, or returns `{'rate_limited', <ms until one is back>}` when no
    /// whole token is left. The caller writes `tokens - 1` and `at` back.
    static let refillBucket = """
        if now > at then
          tokens = math.min(capacity, tokens + (now - at) * capacity / period)
          at = now
        end
        if tokens < 1 then return {'rate_limited', tostring(math.ceil((1 - tokens) * period / capacity))} end

        """

    /// KEYS: the client's bucket (fields `tokens`, `at`). ARGV: now ms, capacity, period ms. Takes a
    /// token, or answers as ``refillBucket`` does.
    static let bucketScript = RedisScript(
        bucketArguments + """
            local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
            local tokens = tonumber(state[1]) or capacity
            local at = tonumber(state[2]) or now

            """ + refillBucket + """
                redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(at))
                redis.call('PEXPIRE', KEYS[1], period + 1000)
                return {'ok'}
                """)

    /// KEYS: the customer's ledger (held seats and attempt bucket). ARGV: now ms, capacity, period ms,
    /// hold id, seats, until ms, the most seats the customer may hold. Takes a token (``refillBucket``)
    /// before it checks the seats (a refused attempt counts), then reserves.
    static let admitScript = RedisScript(
        bucketArguments + """
            local entries = redis.call('HGETALL', KEYS[1])
            local tokens, at = capacity, now
            local held = 0
            local latest = tonumber(ARGV[6])
            for i = 1, #entries, 2 do
              local name, value = entries[i], entries[i + 1]
              if name == '~tokens' then
                tokens = tonumber(value) or capacity
              elseif name == '~at' then
                at = tonumber(value) or now
              else
                local seats, untilms = string.match(value, '^(%d+):(%d+)$')
                untilms = tonumber(untilms)
                if not untilms or untilms <= now then
                  redis.call('HDEL', KEYS[1], name)
                else
                  held = held + tonumber(seats)
                  if untilms > latest then latest = untilms end
                end
              end
            end

            """ + refillBucket + """
                local life = math.max(latest - now, period + 1000)
                if held + tonumber(ARGV[5]) > tonumber(ARGV[7]) then
                  redis.call('HSET', KEYS[1], '~tokens', tostring(tokens - 1), '~at', tostring(at))
                  redis.call('PEXPIRE', KEYS[1], life)
                  return {'limit', tostring(held)}
                end
                redis.call('HSET', KEYS[1], '~tokens', tostring(tokens - 1), '~at', tostring(at), ARGV[4], ARGV[5] .. ':' .. ARGV[6])
                redis.call('PEXPIRE', KEYS[1], life)
                return {'reserved'}
                """)

    /// KEYS: the customer's held-seat ledger. ARGV: hold id. `HDEL` as a script, so that it shares a
    /// round trip with the conversion's script (``SeatHoldStore/recordConversion``).
    static let forgetScript = RedisScript("return redis.call('HDEL', KEYS[1], ARGV[1])")

    /// KEYS: the customer's held-seat ledger. ARGV: hold id, until ms, now ms.
    static let extendScript = RedisScript(
        """
        local value = redis.call('HGET', KEYS[1], ARGV[1])
        if not value then return 0 end
        local seats = string.match(value, '^(%d+):')
        if not seats then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], seats .. ':' .. ARGV[2])
        local life = tonumber(ARGV[2]) - tonumber(ARGV[3])
        if redis.call('PTTL', KEYS[1]) < life then redis.call('PEXPIRE', KEYS[1], math.max(life, 1000)) end
        return 1
        """)
}

/// A hold's entry in its customer's held-seat ledger.
struct HeldSeatsReservation: Sendable, Hashable {
    let customerID: CustomerID
    let holdID: HoldID
}

/// `API_KEY_RATE_LIMITS` on the public routes: authenticates like the wrapped client middleware,
/// then takes a token from the client application's bucket (never the admin's): 429 `rate_limited`
/// with `Retry-After` when it is empty. A Redis failure lets the request through (logged): the limit
/// protects capacity, and Redis being down fails the routes that need it anyway.
struct ClientRateLimitMiddleware: RouterMiddleware {
    typealias Context = ServiceRequestContext
    let authentication: AuthenticationMiddleware
    let limits: APIKeyRateLimits
    let holds: SeatHoldStore
    let clock: WallClock

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await authentication.handle(request, context: context) { request, context in
            if case .client(id: let client) = context.principal, let limit = limits.limit(for: client) {
                let wait: Duration?
                do {
                    wait = try await holds.takeToken(client: client, limit: limit, now: clock.now())
                } catch {
                    context.logger.warning("API key rate limit not checked: Redis failed", metadata: ["client": "\(client)", "error": "\(error)"])
                    wait = nil
                }
                if let wait {
                    HoldLimitMetrics.apiKeyRejections(client).increment()
                    throw APIError.rateLimited(
                        "client \(client) is over its rate limit of \(limit) (API_KEY_RATE_LIMITS)", retryAfter: wait,
                        details: ["limit": .string(limit.description)])
                }
            }
            return try await next(request, context)
        }
    }
}

extension APIError {
    /// 429 `rate_limited` with `Retry-After` in whole seconds, rounded up (at least 1).
    static func rateLimited(_ message: String, retryAfter: Duration, details: [String: JSONValue]? = nil) -> APIError {
        let seconds = retryAfter.wholeSecondsRoundedUp(minimum: 1)
        var details = details ?? [:]
        details["retry_after_seconds"] = .integer(seconds)
        return APIError(.tooManyRequests, code: .rateLimited, message: message, details: details, headers: [.retryAfter: String(seconds)])
    }
}
