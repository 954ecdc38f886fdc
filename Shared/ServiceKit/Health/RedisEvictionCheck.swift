import Logging
import Redis
import ServiceLifecycle

/// Says at start-up when Redis may evict keys. The platform's Redis must run `maxmemory-policy
/// noeviction` (docs/operations.md): under any other policy, memory pressure silently drops stream
/// entries, seat holds or the relay's epoch key, where `noeviction` refuses the write and the
/// services retry or answer 503.
///
/// Checked once per process (`CONFIG GET maxmemory-policy`), retried every 5 s for a minute while
/// Redis does not answer. An evicting policy is logged as an error; a Redis that does not allow
/// `CONFIG` (managed services often rename it) is logged as a notice, since the policy is then the
/// provider's setting to check by hand. Then the service waits for shutdown.
public struct RedisEvictionCheck: Service {
    let redis: RedisClient
    let logger: Logger
    let attempts: Int
    let retryDelay: Duration

    public init(redis: RedisClient, logger: Logger, attempts: Int = 12, retryDelay: Duration = .seconds(5)) {
        self.redis = redis
        self.logger = logger
        self.attempts = attempts
        self.retryDelay = retryDelay
    }

    public func run() async throws {
        await check()
        try? await gracefulShutdown()
    }

    /// What the check found, as logged.
    enum Finding: Equatable {
        case noEviction
        case evicts(policy: String)
        case unreadable(reason: String)
    }

    @discardableResult
    func check() async -> Finding {
        let finding = await read()
        switch finding {
        case .noEviction:
            logger.debug("Redis does not evict keys (maxmemory-policy noeviction)")
        case .evicts(let policy):
            logger.error(
                "Redis may evict keys: stream entries, seat holds and the relay's epoch can be lost under memory pressure; set maxmemory-policy noeviction",
                metadata: ["maxmemory_policy": "\(policy)"])
        case .unreadable(let reason):
            logger.notice(
                "could not read Redis's maxmemory-policy; make sure it is noeviction", metadata: ["reason": "\(reason)"])
        }
        return finding
    }

    private func read() async -> Finding {
        var lastError = "no attempt"
        for attempt in 1...max(1, attempts) {
            do {
                let reply = try await redis.send(["CONFIG", "GET", "maxmemory-policy"])
                guard let values = reply.array, values.count == 2, let policy = values[1].string else {
                    return .unreadable(reason: "CONFIG GET answered \(reply)")
                }
                return policy == "noeviction" ? .noEviction : .evicts(policy: policy)
            } catch let error as RedisError where error.code == .server {
                // CONFIG is disabled or renamed: asking again will not help.
                return .unreadable(reason: error.message)
            } catch {
                lastError = "\(error)"
                if attempt < attempts {
                    do { try await Task.sleep(for: retryDelay) } catch { return .unreadable(reason: "stopped before Redis answered") }
                }
            }
        }
        return .unreadable(reason: lastError)
    }
}
