import Foundation
import Logging
import Metrics
import Postgres
import Redis
import ServiceLifecycle
import SharedModel
import Synchronization

/// Consumes one stream in one consumer group and hands each event to a ``StreamHandler``.
///
/// - Reads with `XREADGROUP ... BLOCK` (at most `block` per call, on a connection of its own), and
///   recreates the group when Redis lost it (`NOGROUP`), starting from the stream's beginning.
/// - Events of one aggregate go to the same lane and are handled in order; `concurrency` lanes run at
///   once. Across instances there is no ordering guarantee.
/// - The effect and the inbox row `(group, event_id)` commit in one transaction; `XACK` follows the
///   commit. Duplicates are skipped by the inbox.
/// - Entries idle in the group longer than `visibilityTimeout` (their consumer died or hangs) are
///   claimed with `XAUTOCLAIM` and handled here. Ids `XAUTOCLAIM` reports as deleted from the stream
///   before anyone acknowledged them become `failure` dead letters naming the stream, group and id.
/// - A failing handler is retried with exponential backoff and jitter; attempts are counted in
///   Postgres, so a crash loop also ends. At `maxAttempts` the event becomes a `failure` dead letter.
///   While a retry waits, the consumer refreshes its claim on the entry (`XCLAIM ... JUSTID`) at least
///   every third of the visibility timeout, so no other instance reclaims an entry that is only waiting.
///   When Postgres cannot be reached to count an attempt, none is counted: the entry stays claimed and
///   is tried again after a backoff of at most 2 s, so it is handled soon after Postgres is back.
/// - Consumer names idle longer than `deadConsumerIdle` that hold no pending entries (processes that
///   ended) are removed from the group (`XGROUP DELCONSUMER`) when the consumer starts and after each
///   claim pass.
/// - Errors of the background steps (read, group, claim, consumer clean-up, lag, claim refresh) are
///   logged and counted in `stream_consumer_errors_total{stream,group,stage}`, every stage registered
///   at zero when the consumer is made.
/// - After each claim pass it reports the group's `consumer_group_lag_entries` (entries not yet
///   delivered), `consumer_group_pending_entries` (delivered, not acknowledged) and
///   `consumer_group_oldest_pending_seconds` (how long ago the oldest pending entry was added to the
///   stream; 0 when none is pending).
/// - On graceful shutdown the message in hand is finished and acknowledged; what was not started stays
///   pending and is claimed by another instance.
public final class StreamConsumer<Handler: StreamHandler>: Service, Sendable {
    public struct Configuration: Sendable {
        public var stream: String
        /// The consuming service's group, e.g. `booking-saga`; also the inbox's consumer name.
        public var group: String
        /// This instance's name within the group.
        public var consumerName: String
        public var concurrency = 8
        public var batchSize = 128
        public var block: Duration = .seconds(1)
        public var visibilityTimeout: Duration = .seconds(30)
        public var maxAttempts = 8
        public var initialBackoff: Duration = .milliseconds(100)
        public var maximumBackoff: Duration = .seconds(30)
        /// The most events of one lane committed in one transaction (``TransactionalStreamHandler`` only).
        public var maximumCommitBatch = 64
        /// Undelivered entries above which the group warns.
        public var lagWarningThreshold = 100_000
        /// A consumer name of this group idle this long with no pending entries is deleted (a process
        /// that ended). A live consumer on a quiet stream may look idle too (Redis 7.0 counts only reads
        /// that returned entries); deleting it loses nothing, as it holds no entries and its next read
        /// recreates it. Default 10 minutes.
        public var deadConsumerIdle: Duration = .seconds(600)

        public init(stream: String, group: String, consumerName: String? = nil) {
            self.stream = stream
            self.group = group
            self.consumerName = consumerName ?? "\(group)-\(ProcessInfo.processInfo.hostName)-\(UUID.random().lowercasedString.prefix(8))"
        }
    }

    typealias Message = StreamConsumerMessage

    private let postgres: PostgresClient
    private let redis: RedisClient
    private let handler: Handler
    private let configuration: Configuration
    private let deadLetters: DeadLetterStore
    private let clock: WallClock
    private let logger: Logger
    private let inProgress = Synchronized<Set<String>>([])
    private let capacity: CapacityGate
    private let processed: Counter
    private let failures: Counter
    private let deadLettered: Counter
    private let lagGauge: Gauge
    private let pendingGauge: Gauge
    private let oldestPendingGauge: Gauge
    private let errorCounters: [String: Counter]
    private let lastOldestPendingAge = Synchronized<Double?>(nil)
    private let errorCounts = Synchronized<[String: Int]>([:])

    /// `clock` dates dead letters, attempts and placeholder envelopes.
    public init(
        postgres: PostgresClient, redis: RedisClient, handler: Handler, configuration: Configuration, logger: Logger, clock: WallClock = .system
    ) {
        self.postgres = postgres
        self.redis = redis
        self.handler = handler
        self.configuration = configuration
        self.clock = clock
        self.deadLetters = DeadLetterStore(postgres: postgres, clock: clock)
        var logger = logger
        logger[metadataKey: "consumer_group"] = .string(configuration.group)
        self.logger = logger
        self.capacity = CapacityGate(limit: max(configuration.batchSize, configuration.concurrency * 16))
        let dimensions = [("group", configuration.group), ("stream", configuration.stream)]
        processed = Counter(label: "consumer_events_processed_total", dimensions: dimensions)
        failures = Counter(label: "consumer_handler_failures_total", dimensions: dimensions)
        deadLettered = Counter(label: "consumer_dead_lettered_total", dimensions: dimensions)
        lagGauge = Gauge(label: "consumer_group_lag_entries", dimensions: dimensions)
        pendingGauge = Gauge(label: "consumer_group_pending_entries", dimensions: dimensions)
        oldestPendingGauge = Gauge(label: "consumer_group_oldest_pending_seconds", dimensions: dimensions)
        // Registered at zero, so `increase()` sees a stage's first error.
        errorCounters = Dictionary(
            uniqueKeysWithValues: Self.errorStages.map { stage in
                (
                    stage,
                    Counter(
                        label: "stream_consumer_errors_total",
                        dimensions: [("group", configuration.group), ("stage", stage), ("stream", configuration.stream)])
                )
            })
    }

    /// The background steps whose failures `stream_consumer_errors_total{stage}` counts.
    static var errorStages: [String] { ["read", "group", "claim", "claim_refresh", "consumers", "dead_letter", "lag"] }

    public func run() async throws {
        let lanes = (0..<max(1, configuration.concurrency)).map { _ in Lane() }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for lane in lanes {
                    group.addTask {
                        while let messages = await lane.next(maximum: self.configuration.maximumCommitBatch) {
                            if Task.isShuttingDownGracefully || Task.isCancelled {
                                // Not started: they stay pending and are claimed by another instance.
                                messages.forEach(self.finished)
                                continue
                            }
                            await self.process(messages)
                        }
                    }
                }
                group.addTask {
                    // Its sleeps are long (half the visibility timeout): cancel them when shutdown begins.
                    await cancelWhenGracefulShutdown { await self.claimLoop(lanes: lanes) }
                }
                await self.readLoop(lanes: lanes)
                for lane in lanes { lane.finish() }
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.capacity.cancelWaiters()
        }
    }

    // MARK: Reading

    private func readLoop(lanes: [Lane]) async {
        let reader = redis.makeStreamReader(name: configuration.consumerName, maximumBlock: configuration.block)
        var backoff: Duration = .milliseconds(100)
        await ensureGroup()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let free = await capacity.waitForCapacity()
            if free == 0 { continue }
            do {
                let entries = try await reader.readGroup(
                    group: configuration.group,
                    consumer: configuration.consumerName,
                    streams: [(configuration.stream, ">")],
                    count: min(free, configuration.batchSize),
                    block: configuration.block
                )
                backoff = .milliseconds(100)
                for entry in entries[configuration.stream] ?? [] {
                    await dispatch(entry, deliveries: 1, lanes: lanes)
                }
            } catch let error as RedisError where error.code == .noGroup {
                logger.warning("consumer group is gone (Redis lost its data?); recreating it")
                await ensureGroup()
            } catch {
                if Task.isCancelled { break }
                recordError(stage: "read", error)
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        // The loop has no other exit: the reader's connection closes before the consumer reports stopped.
        await reader.close()
    }

    private func ensureGroup() async {
        do {
            try await redis.createGroup(configuration.group, on: configuration.stream, startingAt: "0")
        } catch {
            recordError(stage: "group", error)
        }
    }

    /// `NOGROUP`, or `XINFO`'s "no such key" for a stream that does not exist (yet, or any more): the
    /// read loop creates both, so a background step that meets them has nothing to do.
    static func isMissingStreamOrGroup(_ error: RedisError) -> Bool {
        error.code == .noGroup || error.message.hasPrefix("ERR no such key")
    }

    /// Logs a failed background step and counts it in `stream_consumer_errors_total` by stage.
    private func recordError(stage: String, _ error: any Error) {
        errorCounts.withLock { $0[stage, default: 0] += 1 }
        let counter =
            errorCounters[stage]
            ?? Counter(
                label: "stream_consumer_errors_total",
                dimensions: [("group", configuration.group), ("stage", stage), ("stream", configuration.stream)])
        counter.increment()
        logger.warning("stream consumer step failed", metadata: ["stage": "\(stage)", "error": "\(error)"])
    }

    /// How many errors a background step had in this instance (`stage` as in the metric's label).
    package func errorCount(stage: String) -> Int {
        errorCounts.withLock { $0[stage] ?? 0 }
    }

    /// Claims entries whose consumer has not acknowledged them within the visibility timeout.
    private func claimLoop(lanes: [Lane]) async {
        let interval = max(configuration.visibilityTimeout / 2, .milliseconds(50))
        await removeDeadConsumers()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: interval)
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            var start = "0-0"
            repeat {
                do {
                    let claim = try await redis.xautoclaim(
                        configuration.stream,
                        group: configuration.group,
                        consumer: configuration.consumerName,
                        minimumIdle: configuration.visibilityTimeout,
                        start: start,
                        count: 100
                    )
                    if !claim.deletedIDs.isEmpty {
                        await deadLetterDeleted(claim.deletedIDs)
                    }
                    for entry in claim.entries {
                        _ = await capacity.waitForCapacity()
                        await dispatch(entry, deliveries: 2, lanes: lanes)
                    }
                    start = claim.nextStart
                } catch {
                    if !Task.isCancelled { recordError(stage: "claim", error) }
                    break
                }
            } while start != "0-0" && !Task.isCancelled
            await removeDeadConsumers()
            await reportLag()
        }
    }

    /// Deletes consumer names of this group idle longer than `deadConsumerIdle` that hold nothing.
    private func removeDeadConsumers() async {
        do {
            let consumers = try await redis.xinfoConsumers(configuration.stream, group: configuration.group)
            for consumer in consumers
            where consumer.name != configuration.consumerName && consumer.pending == 0 && consumer.idle > configuration.deadConsumerIdle {
                // It held nothing a moment ago, and nothing reads under a dead consumer's name, so deleting
                // drops no entry; DELCONSUMER's count of dropped entries is checked all the same.
                let dropped = try await redis.deleteConsumer(consumer.name, group: configuration.group, stream: configuration.stream)
                logger.log(
                    level: dropped == 0 ? .info : .error,
                    "removed a dead consumer from the group",
                    metadata: ["consumer": "\(consumer.name)", "idle_ms": "\(consumer.idle.wholeMilliseconds)", "dropped_pending": "\(dropped)"])
            }
        } catch let error as RedisError where Self.isMissingStreamOrGroup(error) {
            // Not created yet (or Redis lost it): the read loop creates both.
        } catch {
            if !Task.isCancelled { recordError(stage: "consumers", error) }
        }
    }

    /// Ids `XAUTOCLAIM` found pending but no longer in the stream (trimmed or deleted before this group
    /// acknowledged them): each becomes a `failure` dead letter naming the stream, group and id. Redis 7
    /// already removed them from the pending list; the `XACK` covers older servers.
    private func deadLetterDeleted(_ ids: [String]) async {
        let stream = configuration.stream
        let group = configuration.group
        let clock = self.clock
        for id in ids {
            let envelope = placeholderEnvelope(type: "deleted", entryID: id, data: ["entry_id": .string(id), "stream": .string(stream)])
            do {
                _ = try await postgres.withTransaction { transaction in
                    try DeadLetterStore.record(
                        kind: .failure, stream: stream, consumer: group, envelope: envelope,
                        error: "entry \(id) of \(stream) was deleted before group \(group) acknowledged it", attempts: 0,
                        firstFailedAt: clock.now(), clock: clock, in: transaction
                    )
                }
                deadLettered.increment()
                logger.error("a pending entry was deleted from the stream; dead-lettered", metadata: ["entry_id": "\(id)"])
            } catch {
                recordError(stage: "dead_letter", error)
            }
        }
        do {
            try await redis.xack(stream, group: group, ids: ids)
        } catch {
            recordError(stage: "claim", error)
        }
    }

    /// An envelope standing for a stream entry that has no readable event of its own.
    private func placeholderEnvelope(type: String, entryID: String, data: [String: JSONValue]) -> EventEnvelope {
        EventEnvelope(
            type: type,
            version: 1,
            occurredAt: clock.now(),
            aggregateID: entryID,
            sequence: 0,
            correlationID: entryID,
            causationID: nil,
            producer: "unknown",
            data: .object(data)
        )
    }

    /// Publishes the group's lag (entries not yet delivered), pending count and the age of its oldest
    /// pending entry, and warns when the group falls far behind (the relay never trims entries a group
    /// has not acknowledged, so the stream grows).
    private func reportLag() async {
        let groups: [RedisGroupInfo]
        do {
            groups = try await redis.xinfoGroups(configuration.stream)
        } catch let error as RedisError where Self.isMissingStreamOrGroup(error) {
            return
        } catch {
            if !Task.isCancelled { recordError(stage: "lag", error) }
            return
        }
        guard let info = groups.first(where: { $0.name == configuration.group }) else { return }
        pendingGauge.record(info.pending)
        await reportOldestPending(pending: info.pending)
        guard let lag = info.lag else { return }
        lagGauge.record(lag)
        if lag > configuration.lagWarningThreshold {
            logger.warning("consumer group is far behind its stream", metadata: ["lag": "\(lag)", "pending": "\(info.pending)"])
        }
    }

    /// `consumer_group_oldest_pending_seconds`: the age of the group's oldest pending entry, from the
    /// time in its id (Redis' clock when the entry was added, so compared with the system clock, not
    /// the injected one); 0 when nothing is pending. Claims and retries do not reset it, so it grows
    /// while an entry is stuck.
    private func reportOldestPending(pending: Int) async {
        guard pending > 0 else {
            recordOldestPending(0)
            return
        }
        do {
            guard let oldest = try await redis.oldestPendingID(configuration.stream, group: configuration.group).flatMap(RedisStreamID.init)
            else {
                recordOldestPending(0)
                return
            }
            let added = Date(timeIntervalSince1970: Double(oldest.milliseconds) / 1000)
            recordOldestPending(max(0, Date().timeIntervalSince(added)))
        } catch let error as RedisError where Self.isMissingStreamOrGroup(error) {
            recordOldestPending(0)
        } catch {
            if !Task.isCancelled { recordError(stage: "lag", error) }
        }
    }

    private func recordOldestPending(_ age: Double) {
        lastOldestPendingAge.withLock { $0 = age }
        oldestPendingGauge.record(age)
    }

    /// The age in seconds of the group's oldest pending entry as last reported in
    /// `consumer_group_oldest_pending_seconds`; nil before the first report.
    package func oldestPendingAge() -> Double? {
        lastOldestPendingAge.withLock { $0 }
    }

    private func dispatch(_ entry: RedisStreamEntry, deliveries: Int, lanes: [Lane]) async {
        let isNew = inProgress.withLock { $0.insert(entry.id).inserted }
        guard isNew else { return }  // already in hand here (a claim of our own slow entry)
        capacity.take()
        guard let bytes = entry.fields[Streams.envelopeField], let envelope = try? EventEnvelope(jsonData: Data(bytes)) else {
            await deadLetterUnreadable(entry)
            return
        }
        let lane = Int(stableHash(envelope.aggregateID) % UInt64(lanes.count))
        lanes[lane].push(Message(entryID: entry.id, envelope: envelope, deliveries: deliveries))
    }

    private func finished(_ message: Message) {
        inProgress.withLock { _ = $0.remove(message.entryID) }
        capacity.give()
    }

    // MARK: Handling

    /// Deletes the attempt count of an event this consumer no longer has to process; a failure only
    /// leaves a stale count behind (nothing reads it as a reason to act), so it is logged.
    private func clearAttempts(_ eventID: UUID) async {
        do {
            try await postgres.sharedQuery("DELETE FROM messaging.attempts WHERE consumer = \(configuration.group) AND event_id = \(eventID)")
        } catch {
            logger.warning("could not clear the attempts of an event processed elsewhere", metadata: ["event_id": "\(eventID)", "error": "\(error)"])
        }
    }

    /// Commits first deliveries of a transactional handler together; everything else (and any batch
    /// that fails) goes one by one.
    private func process(_ messages: [Message]) async {
        guard let transactional = handler as? any TransactionalStreamHandler else {
            for message in messages { await process(message) }
            return
        }
        let fresh = messages.filter { $0.deliveries == 1 }
        let redelivered = messages.filter { $0.deliveries > 1 }
        if fresh.count > 1, await commitTogether(fresh, handler: transactional) {
            for message in fresh { finished(message) }
        } else {
            for message in fresh { await process(message) }
        }
        for message in redelivered { await process(message) }
    }

    /// One transaction for the batch: inbox rows in one statement, then each new event's effect.
    /// Returns false (nothing committed) if anything failed.
    private func commitTogether(_ messages: [Message], handler: any TransactionalStreamHandler) async -> Bool {
        let group = configuration.group
        let envelopes = messages.map(\.envelope)
        let processedAt = clock.now()
        let applied: [EventEnvelope]
        do {
            applied = try await postgres.withTransaction { transaction in
                let inserted = try transaction.query(
                    """
                    INSERT INTO messaging.inbox (consumer, event_id, processed_at)
                    SELECT \(group), unnest(\(envelopes.map(\.id.uuid))::uuid[]), \(processedAt)
                    ON CONFLICT DO NOTHING RETURNING event_id
                    """)
                // An event can sit in the stream twice (the relay republished it after Redis lost its
                // data, or a standby published it again) and come twice in one read: applied once.
                var new = Set(try inserted.map { try $0.decode(UUID.self, at: 0) })
                let fresh = envelopes.filter { new.remove($0.id.uuid) != nil }
                for envelope in fresh {
                    try handler.apply(envelope, in: transaction)
                }
                return fresh
            }
        } catch {
            return false
        }
        if !applied.isEmpty { handler.committed(applied) }
        processed.increment(by: messages.count)
        do {
            try await redis.xack(configuration.stream, group: configuration.group, ids: messages.map(\.entryID))
        } catch {
            logger.warning("XACK failed", metadata: ["entries": "\(messages.count)", "error": "\(error)"])
        }
        return true
    }

    private func process(_ message: Message) async {
        defer { finished(message) }
        let group = configuration.group
        let eventID = message.envelope.id.uuid
        var hasAttempts = false
        var attempt = 1
        var outages = 0
        while message.deliveries > 1 {
            // Delivered before: maybe already processed, maybe a crash loop. Count this attempt first.
            do {
                let done = try await postgres.sharedQuery("SELECT 1 FROM messaging.inbox WHERE consumer = \(group) AND event_id = \(eventID)")
                if !done.isEmpty {
                    await acknowledge(message)
                    return
                }
                let counted = try await recordAttempt(eventID: eventID, error: nil)
                hasAttempts = true
                attempt = counted.attempts
                if counted.attempts > configuration.maxAttempts {
                    try await deadLetter(
                        message, error: counted.lastError ?? "gave up after repeated deliveries", attempts: counted.attempts - 1,
                        firstFailedAt: counted.firstAt)
                    return
                }
                break
            } catch {
                outages += 1
                guard await waitOutOutage(message, error: error, outages: outages) else { return }
            }
        }
        var preCounted = hasAttempts
        while true {
            let context = HandlerContext(
                consumer: group, envelope: message.envelope, attempt: attempt, postgres: postgres, clock: clock, clearsAttempts: hasAttempts)
            do {
                try await handler.handle(message.envelope, context: context)
                if !context.didCommit { try await context.commit { _ in () } }
                processed.increment()
                await acknowledge(message)
                return
            } catch is AlreadyProcessed {
                // Another instance committed the event meanwhile; the attempts counted here are moot.
                if hasAttempts { await clearAttempts(eventID) }
                await acknowledge(message)
                return
            } catch {
                if Task.isCancelled { return }
                failures.increment()
                let description = String(describing: error)
                let counted: AttemptCount
                do {
                    counted = try await recordAttempt(eventID: eventID, error: description, increment: !preCounted)
                } catch let recordError {
                    // The attempt cannot be counted: Postgres is down or unreachable, which is no fault of
                    // the event. Try again from the handler once it may be back.
                    outages += 1
                    guard await waitOutOutage(message, error: recordError, outages: outages) else { return }
                    continue
                }
                outages = 0
                preCounted = false
                hasAttempts = true
                logger.warning(
                    "handler failed",
                    metadata: [
                        "event_id": "\(eventID)", "event_type": "\(message.envelope.type)", "attempt": "\(counted.attempts)",
                        "error": "\(description)",
                    ]
                )
                do {
                    if counted.attempts >= configuration.maxAttempts {
                        try await deadLetter(message, error: description, attempts: counted.attempts, firstFailedAt: counted.firstAt)
                        return
                    }
                    attempt = counted.attempts + 1
                    // Shutdown ends the wait; the event stays pending and another instance claims it.
                    try await waitKeepingClaim(message, for: backoff(afterAttempt: counted.attempts))
                } catch {
                    // Postgres went away while dead-lettering, or we are stopping: the entry stays pending
                    // and its next delivery counts the attempt again.
                    return
                }
                if Task.isShuttingDownGracefully { return }
            }
        }
    }

    /// Postgres could not be reached to read the inbox or count an attempt (restarting, failing over,
    /// its pool exhausted). The entry stays claimed here and is tried again after a backoff capped at
    /// ``outageRetryCeiling``, so it is handled within seconds of Postgres coming back, not after the
    /// visibility timeout and the next claim pass (30-60 s). No attempt is counted for an outage: it
    /// says nothing about the event. Returns false when the service is stopping; the entry then stays
    /// pending for another instance.
    private func waitOutOutage(_ message: Message, error: any Error, outages: Int) async -> Bool {
        if Task.isCancelled || Task.isShuttingDownGracefully { return false }
        let delay = min(backoff(afterAttempt: outages), Self.outageRetryCeiling)
        logger.warning(
            "Postgres unavailable; the event stays claimed and is tried again",
            metadata: [
                "event_id": "\(message.envelope.id)", "event_type": "\(message.envelope.type)", "outages": "\(outages)",
                "retry_in_ms": "\(delay.wholeMilliseconds)", "error": "\(error)",
            ])
        do {
            try await waitKeepingClaim(message, for: delay)
        } catch {
            return false
        }
        return !Task.isShuttingDownGracefully
    }

    /// The longest wait between two tries of an event while Postgres is unavailable.
    static var outageRetryCeiling: Duration { .seconds(2) }

    /// Waits before an in-process retry while keeping the entry claimed: the claim is refreshed now and
    /// then at least every third of the visibility timeout, so the wait may be longer than the timeout
    /// without another instance reclaiming (and handling) the entry meanwhile.
    private func waitKeepingClaim(_ message: Message, for delay: Duration) async throws {
        let step = max(configuration.visibilityTimeout / 3, .milliseconds(1))
        var remaining = delay
        while remaining > .zero {
            await refreshClaim(message)
            let nap = min(step, remaining)
            try await cancelWhenGracefulShutdown { try await Task.sleep(for: nap) }
            remaining -= nap
        }
    }

    private func refreshClaim(_ message: Message) async {
        do {
            try await redis.refreshClaim(
                configuration.stream, group: configuration.group, consumer: configuration.consumerName, ids: [message.entryID])
        } catch {
            recordError(stage: "claim_refresh", error)
        }
    }

    /// Exponential backoff with full jitter, capped.
    func backoff(afterAttempt attempt: Int) -> Duration {
        let exponent = min(attempt - 1, 20)
        let ceiling = min(configuration.initialBackoff * (1 << exponent), configuration.maximumBackoff)
        let milliseconds = max(1, ceiling.wholeMilliseconds)
        return .milliseconds(Int64.random(in: (milliseconds / 2)...milliseconds))
    }

    private struct AttemptCount {
        var attempts: Int
        var firstAt: Date
        var lastError: String?
    }

    /// Adds one attempt (or only updates the error of an attempt already counted).
    private func recordAttempt(eventID: UUID, error: String?, increment: Bool = true) async throws -> AttemptCount {
        let now = clock.now()
        let rows = try await postgres.query(
            """
            INSERT INTO messaging.attempts AS a (consumer, event_id, attempts, last_error, first_attempt_at, last_attempt_at)
            VALUES (\(configuration.group), \(eventID), 1, \(error), \(now), \(now))
            ON CONFLICT (consumer, event_id) DO UPDATE
                SET attempts = a.attempts + \(Int32(increment ? 1 : 0)), last_error = COALESCE(EXCLUDED.last_error, a.last_error),
                    last_attempt_at = EXCLUDED.last_attempt_at
            RETURNING attempts, first_attempt_at, last_error
            """
        )
        return AttemptCount(
            attempts: try rows[0].decode(Int.self, at: 0),
            firstAt: try rows[0].decode(Date.self, at: 1),
            lastError: try rows[0].decode(String?.self, at: 2)
        )
    }

    private func deadLetter(_ message: Message, error: String, attempts: Int, firstFailedAt: Date) async throws {
        let group = configuration.group
        let stream = configuration.stream
        let eventID = message.envelope.id.uuid
        let envelope = message.envelope
        let clock = self.clock
        try await postgres.withTransaction { transaction in
            try DeadLetterStore.record(
                kind: .failure,
                stream: stream,
                consumer: group,
                envelope: envelope,
                error: error,
                attempts: attempts,
                firstFailedAt: firstFailedAt,
                clock: clock,
                in: transaction
            )
            try transaction.query("DELETE FROM messaging.attempts WHERE consumer = \(group) AND event_id = \(eventID)")
        }
        deadLettered.increment()
        logger.error("event dead-lettered", metadata: ["event_id": "\(eventID)", "event_type": "\(envelope.type)", "attempts": "\(attempts)"])
        await acknowledge(message)
    }

    private func deadLetterUnreadable(_ entry: RedisStreamEntry) async {
        defer {
            inProgress.withLock { _ = $0.remove(entry.id) }
            capacity.give()
        }
        let raw = entry.fields[Streams.envelopeField].map { String(decoding: $0, as: UTF8.self) } ?? ""
        let envelope = placeholderEnvelope(type: "unreadable", entryID: entry.id, data: ["raw": .string(raw), "entry_id": .string(entry.id)])
        do {
            let stream = configuration.stream
            let group = configuration.group
            let clock = self.clock
            _ = try await postgres.withTransaction { transaction in
                try DeadLetterStore.record(
                    kind: .failure, stream: stream, consumer: group, envelope: envelope, error: "the stream entry has no readable envelope",
                    attempts: 1, firstFailedAt: clock.now(), clock: clock, in: transaction
                )
            }
            try await redis.xack(configuration.stream, group: configuration.group, ids: [entry.id])
        } catch {
            logger.warning("could not dead-letter an unreadable entry; it stays pending", metadata: ["error": "\(error)"])
        }
    }

    private func acknowledge(_ message: Message) async {
        do {
            try await redis.xack(configuration.stream, group: configuration.group, ids: [message.entryID])
        } catch {
            // It stays pending and is claimed again; the inbox makes the second handling a no-op.
            logger.warning("XACK failed", metadata: ["entry_id": "\(message.entryID)", "error": "\(error)"])
        }
    }
}

/// An entry read from the stream, with its decoded envelope.
struct StreamConsumerMessage: Sendable {
    let entryID: String
    let envelope: EventEnvelope
    /// 1 for a first delivery, 2 or more when it was delivered before.
    let deliveries: Int
}

/// One lane's queue: events of the aggregates hashed to it, in arrival order.
final class Lane: Sendable {
    private struct State {
        var messages: [Message] = []
        var waiter: CheckedContinuation<[Message]?, Never>?
        var finished = false
    }
    typealias Message = StreamConsumerMessage
    private let state = Mutex(State())

    func push(_ message: Message) {
        let waiter: CheckedContinuation<[Message]?, Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.messages.append(message)
            return nil
        }
        waiter?.resume(returning: [message])
    }

    /// Up to `maximum` queued events, waiting for one if there are none; nil once finished and empty.
    func next(maximum: Int) async -> [Message]? {
        await withCheckedContinuation { continuation in
            let ready: [Message]?? = state.withLock { state in
                if !state.messages.isEmpty {
                    let count = min(maximum, state.messages.count)
                    let batch = Array(state.messages.prefix(count))
                    state.messages.removeFirst(count)
                    return .some(batch)
                }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    func finish() {
        let waiter: CheckedContinuation<[Message]?, Never>? = state.withLock { state in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }
}

/// FNV-1a, stable across processes (Swift's `hashValue` is seeded per process).
func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return hash
}

/// Bounds the events a consumer holds at once, so a slow handler applies backpressure to reading.
final class CapacityGate: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Int, Never>] = []
        var cancelled = false
    }
    private let state: Mutex<State>

    init(limit: Int) {
        state = Mutex(State(available: limit))
    }

    /// Returns the free capacity, waiting until there is some (0 after ``cancelWaiters()``).
    func waitForCapacity() async -> Int {
        await withCheckedContinuation { continuation in
            let free: Int? = state.withLock { state in
                if state.available > 0 || state.cancelled { return max(0, state.available) }
                state.waiters.append(continuation)
                return nil
            }
            if let free { continuation.resume(returning: free) }
        }
    }

    func take() {
        state.withLock { $0.available -= 1 }
    }

    func give() {
        let waiters: [CheckedContinuation<Int, Never>] = state.withLock { state in
            state.available += 1
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: 1) }
    }

    func cancelWaiters() {
        let waiters: [CheckedContinuation<Int, Never>] = state.withLock { state in
            state.cancelled = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: 0) }
    }
}
