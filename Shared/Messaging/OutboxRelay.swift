import Foundation
import Logging
import Metrics
import Postgres
import Redis
import ServiceLifecycle
import SharedModel
import Synchronization

/// Publishes the outbox to Redis Streams, in outbox order, exactly one leader at a time.
///
/// - Leadership: a session advisory lock held on the relay's own connection. Standbys try it every
///   `standbyRetry`; when the leader dies its session ends and a standby takes over. A leader whose
///   connection was re-established (a new session, so no lock) notices and goes back to standby.
/// - Publishing: up to `batchSize` unpublished rows with pipelined `XADD`, then the rows
///   that were added are marked published. A row is never marked before Redis accepted it, so a crash
///   or a Redis outage loses nothing (at worst an event is published twice; consumers' inboxes absorb
///   duplicates). It polls every `pollInterval` while there is work, and for `idleAfter` after the
///   last row it published or the last append in its own process; idle longer, every
///   `idlePollInterval`, so an idle system costs a few statements a second instead of a hundred. An
///   append in its own process rings ``localAppends``: an idle relay wakes at once, a busy one only
///   stays busy (polling at each append cost a query per booking at a moderate load). An append in
///   another process is published within `idlePollInterval` of its commit when the relay is idle.
/// - Redis data loss: an epoch key in Redis is checked every `epochCheckInterval`; when it is missing
///   (restart without persistence, FLUSHALL, failover) every row still in the outbox is published again.
/// - Retention: published rows are deleted `retention` after publishing.
/// - Trimming: every `maintenanceInterval` each stream this leader published to is trimmed below the
///   oldest entry some consumer group still needs (its oldest pending entry, else the entry after its
///   last-delivered id), with `XTRIM MINID ~`; an entry a group has not acknowledged is never removed.
///   A stream without any group is capped at about `approximateMaxStreamLength` entries.
public final class OutboxRelay: Service, Sendable {
    public struct Configuration: Sendable {
        public var batchSize = 500
        public var pollInterval: Duration = .milliseconds(10)
        /// How long after the last work the relay keeps polling every `pollInterval`.
        public var idleAfter: Duration = .seconds(1)
        /// The poll interval once idle for `idleAfter`.
        public var idlePollInterval: Duration = .milliseconds(100)
        public var standbyRetry: Duration = .milliseconds(500)
        public var epochCheckInterval: Duration = .milliseconds(250)
        /// Published rows are kept this long (for republishing after Redis lost data), then deleted.
        public var retention: Duration = .seconds(72 * 3600)
        /// The approximate length a stream *without consumer groups* is trimmed to (nobody would read the
        /// entries). Streams with groups are trimmed only below what every group acknowledged.
        public var approximateMaxStreamLength = 1_000_000
        /// How often retention, trimming and the lag metrics run while leading.
        public var maintenanceInterval: Duration = .seconds(5)
        public var maximumBackoff: Duration = .seconds(5)
        /// The Redis key whose disappearance means Redis lost its data.
        public var epochKey = "outbox:epoch"
        /// Closed dead letters (replayed, resolved, discarded) older than this are deleted, and the count
        /// is logged; nil keeps them forever. Open entries are never deleted.
        public var deadLetterRetention: Duration?

        public init() {}
    }

    /// Rung by every append to the outbox in this process (before its commit): an idle relay leading
    /// here wakes at once and polls at `pollInterval` again, so the commit is published without
    /// waiting out an idle poll; a busy one stays busy.
    public static let localAppends = Doorbells()

    /// The advisory lock key of the relay leader (shared by every service's relay).
    public static let leaderLockKey: Int64 = 0x626F_6F6B_696E_6702

    private let postgres: PostgresClient
    private let redis: RedisClient
    private let configuration: Configuration
    private let logger: Logger
    private let clock: WallClock
    private let unpublishedGauge = Gauge(label: "outbox_unpublished_events")
    private let oldestGauge = Gauge(label: "outbox_oldest_unpublished_seconds")
    private let publishedCounter = Counter(label: "outbox_published_events_total")
    private let leaderGauge = Gauge(label: "outbox_relay_leader")

    /// `clock` stamps `published_at` and places the retention cutoffs.
    public init(postgres: PostgresClient, redis: RedisClient, configuration: Configuration = .init(), logger: Logger, clock: WallClock = .system) {
        self.postgres = postgres
        self.redis = redis
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
    }

    public func run() async throws {
        // Shutdown cancels the waits (poll, standby, backoff); statements in flight still complete, so a
        // batch that Redis accepted is marked published before the relay stops.
        await cancelWhenGracefulShutdown { await self.runUntilCancelled() }
    }

    /// Runs until the task is cancelled or graceful shutdown begins. A batch in hand is finished first.
    func runUntilCancelled() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await postgres.withConnection { connection in
                    try await lead(on: connection)
                }
            } catch is CancellationError {
                break
            } catch {
                logger.warning("outbox relay interrupted", metadata: ["error": "\(error)"])
            }
            leaderGauge.record(0)
            try? await Task.sleep(for: configuration.standbyRetry)
        }
        leaderGauge.record(0)
    }

    /// Becomes leader (or returns when another instance is), then publishes until something fails.
    private func lead(on connection: PostgresConnection) async throws {
        let locked = try await connection.query("SELECT pg_try_advisory_lock(\(Self.leaderLockKey))")
        guard try locked[0].decode(Bool.self, at: 0), let session = await connection.backendPID else { return }
        let outcome: Result<Void, any Error>
        do {
            try await publish(on: connection, session: session)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        // After a reconnect the lock went with the old session; unlocking then is a harmless no-op.
        _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.leaderLockKey))")
        try outcome.get()
    }

    /// Publishes while this instance holds the leader lock on `session`.
    private func publish(on connection: PostgresConnection, session: Int32) async throws {
        logger.info("outbox relay is the leader")
        leaderGauge.record(1)
        let clock = ContinuousClock()
        var nextEpochCheck = clock.now
        var nextMaintenance = clock.now
        var backoff: Duration = .milliseconds(50)
        var streams: Set<String> = []
        var lastWork = clock.now
        let doorbell = Doorbell()
        Self.localAppends.add(doorbell)
        defer { Self.localAppends.remove(doorbell) }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                if clock.now >= nextEpochCheck {
                    try await repairIfRedisLostData(connection: connection)
                    nextEpochCheck = clock.now + configuration.epochCheckInterval
                }
                if clock.now >= nextMaintenance {
                    try await maintain(connection: connection)
                    await trim(streams)
                    nextMaintenance = clock.now + configuration.maintenanceInterval
                }
                let published = try await publishBatch(connection: connection, session: session, streams: &streams)
                backoff = .milliseconds(50)
                if published > 0 { lastWork = clock.now }
                if published < configuration.batchSize {
                    if clock.now - lastWork >= configuration.idleAfter {
                        let waited = clock.now
                        await doorbell.wait(upTo: configuration.idlePollInterval)
                        try Task.checkCancellation()
                        // Rung before the interval ran out: an append in this process; its commit follows within milliseconds.
                        if clock.now - waited < configuration.idlePollInterval { lastWork = clock.now }
                    } else {
                        // Busy: the appends meanwhile only keep it busy. Waking at each one would cost a
                        // query per append, made before that append's commit, so mostly finding nothing.
                        try await Task.sleep(for: configuration.pollInterval)
                        if doorbell.takeRing() { lastWork = clock.now }
                    }
                }
            } catch let error as LostLeadership {
                logger.warning("outbox relay lost its leader session", metadata: ["reason": "\(error.reason)"])
                return
            } catch let error as RedisError {
                // Redis is down or refusing writes: nothing was marked published; try again later.
                logger.warning("outbox relay cannot publish", metadata: ["error": "\(error)"])
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, configuration.maximumBackoff)
            }
        }
    }

    private struct LostLeadership: Error {
        let reason: String
    }

    /// Publishes up to one batch; returns how many rows it published.
    private func publishBatch(connection: PostgresConnection, session: Int32, streams: inout Set<String>) async throws -> Int {
        let rows = try await connection.query(
            """
            SELECT position, stream, envelope::text FROM messaging.outbox
            WHERE published_at IS NULL ORDER BY position LIMIT \(configuration.batchSize)
            """
        )
        // A reconnect inside the query would mean a new session without the lock.
        guard await connection.backendPID == session else { throw LostLeadership(reason: "the connection was re-established") }
        guard !rows.isEmpty else { return 0 }
        var positions: [Int64] = []
        var commands: [[RedisArgument]] = []
        positions.reserveCapacity(rows.count)
        commands.reserveCapacity(rows.count)
        for row in rows {
            positions.append(try row.decode(Int64.self, at: 0))
            let envelope = try row.decode(String.self, at: 2)
            let stream = try row.decode(String.self, at: 1)
            streams.insert(stream)
            commands.append(
                RedisClient.xaddArguments(
                    stream: stream,
                    approximateMaxLength: nil,
                    fields: [(Streams.envelopeField, Array(envelope.utf8))]
                )
            )
        }
        let replies = try await redis.pipeline(commands)
        // Mark the rows Redis accepted, up to the first refusal, so the order is kept.
        let accepted = replies.prefix { if case .error = $0 { false } else { true } }.count
        if accepted > 0 {
            try await connection.query(
                "UPDATE messaging.outbox SET published_at = \(clock.now()) WHERE position = ANY(\(Array(positions.prefix(accepted))))")
            publishedCounter.increment(by: accepted)
        }
        if accepted < replies.count, case .error(let message) = replies[accepted] {
            throw RedisError(code: .server, message: message)
        }
        return accepted
    }

    /// When the epoch key is gone, Redis lost its data: everything still in the outbox goes out again.
    private func repairIfRedisLostData(connection: PostgresConnection) async throws {
        if try await redis.send("EXISTS", RedisArgument(configuration.epochKey)).integer == 1 { return }
        let reset = try await connection.query("UPDATE messaging.outbox SET published_at = NULL WHERE published_at IS NOT NULL")
        try await redis.send("SET", RedisArgument(configuration.epochKey), RedisArgument(UUID.random().uuidString), "NX")
        if reset.affectedRows > 0 {
            logger.warning("redis lost its data; republishing the outbox", metadata: ["events": "\(reset.affectedRows)"])
        }
    }

    /// Trims each stream below what all of its groups acknowledged; a failure is logged and retried at the
    /// next maintenance.
    private func trim(_ streams: Set<String>) async {
        for stream in streams {
            do {
                try await trim(stream)
            } catch let error as RedisError where error.message.hasPrefix("ERR no such key") {
                // Gone since it was published (Redis lost its data): the epoch check republishes it.
            } catch {
                logger.warning("could not trim a stream", metadata: ["stream": "\(stream)", "error": "\(error)"])
            }
        }
    }

    /// Removes the entries every group is done with: for each group the bound is its oldest pending entry
    /// or, with nothing pending, the entry after its last-delivered id; the stream is trimmed below the
    /// lowest bound. Delivered entries only become pending and pending ones only get acknowledged, so a
    /// bound read a moment ago is never too high.
    private func trim(_ stream: String) async throws {
        let groups = try await redis.xinfoGroups(stream)
        guard !groups.isEmpty else {
            try await redis.send("XTRIM", RedisArgument(stream), "MAXLEN", "~", RedisArgument(configuration.approximateMaxStreamLength))
            return
        }
        var lowest: RedisStreamID?
        for group in groups {
            let bound: RedisStreamID?
            if let oldestPending = try await redis.oldestPendingID(stream, group: group.name) {
                bound = RedisStreamID(oldestPending)
            } else {
                bound = RedisStreamID(group.lastDeliveredID)?.successor
            }
            guard let bound else { return }  // an id this code cannot read: trim nothing
            lowest = min(lowest ?? bound, bound)
        }
        if let lowest {
            try await redis.trim(stream, below: lowest)
        }
    }

    /// Deletes rows past retention and refreshes the lag metrics.
    private func maintain(connection: PostgresConnection) async throws {
        let now = clock.now()
        try await connection.query(
            """
            DELETE FROM messaging.outbox WHERE position IN (
                SELECT position FROM messaging.outbox WHERE published_at < \(now.subtracting(configuration.retention))
                ORDER BY published_at LIMIT 10000)
            """
        )
        if let retention = configuration.deadLetterRetention {
            let purged = try await connection.query(
                "DELETE FROM messaging.dead_letters WHERE status <> 'open' AND status_changed_at < \(now.subtracting(retention))")
            if purged.affectedRows > 0 {
                logger.notice("purged closed dead letters past retention", metadata: ["count": "\(purged.affectedRows)"])
            }
        }
        let lag = try await connection.query(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8::text FROM messaging.outbox WHERE published_at IS NULL"
        )
        unpublishedGauge.record(try lag[0].decode(Int.self, at: 0))
        oldestGauge.record(Double(try lag[0].decode(String.self, at: 1)) ?? 0)
    }
}

/// A set of doorbells rung together: each waiting loop registers its own (a ``Doorbell`` has one
/// waiter), and `ring` wakes them all.
public final class Doorbells: Sendable {
    private let members = Mutex<[ObjectIdentifier: Doorbell]>([:])

    public init() {}

    public func add(_ doorbell: Doorbell) { members.withLock { $0[ObjectIdentifier(doorbell)] = doorbell } }

    public func remove(_ doorbell: Doorbell) { _ = members.withLock { $0.removeValue(forKey: ObjectIdentifier(doorbell)) } }

    /// Rings every registered doorbell (none registered: nothing to do).
    public func ring() {
        let doorbells = members.withLock { $0.isEmpty ? [] : Array($0.values) }
        for doorbell in doorbells { doorbell.ring() }
    }
}
