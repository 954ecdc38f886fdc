import ArgumentParser
import Foundation
import Logging
import Messaging
import Migrations
import Postgres
import Redis
import SharedModel
import Synchronization

/// End to end through the messaging backbone: 1-event transactions appended by concurrent writers,
/// published by the relay, handled and acknowledged by a consumer (inbox row per event). Reports
/// events/s, append-to-handled latency, and how long the relay and consumer take to drain after the
/// writers stop. A warm-up comes first (not counted), then `ANALYZE` of the messaging tables, so the
/// relay's and consumer's sessions plan their statements for tables that hold rows (a plan made for
/// an empty outbox scans it whole; see `bench_analyze` in scripts/lib/bench.sh).
struct MessagingEndToEnd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "messaging", abstract: "Outbox -> relay -> stream -> consumer, end to end.")
    @Option(help: "Postgres URL (a database the benchmark may migrate).") var databaseURL: String
    @Option(help: "Redis URL.") var redisURL: String
    @Option(help: "Concurrent writers, one event per transaction.") var writers: Int = 8
    @Option(help: "Consumer lanes.") var concurrency: Int = 8
    @Option(help: "Seconds of writing.") var seconds: Int = 10
    @Option(help: "Seconds of writing before the measurement, not counted (0: none).") var warmup: Int = 2
    @Option(help: "Relay poll interval when idle, milliseconds.") var pollMilliseconds: Int = 10

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var postgresConfiguration = try PostgresClient.Configuration(url: databaseURL)
        postgresConfiguration.maximumConnections = writers + concurrency + 2
        let postgres = PostgresClient(configuration: postgresConfiguration, logger: logger)
        var redisConfiguration = try RedisClient.Configuration(url: redisURL)
        redisConfiguration.maximumConnections = concurrency + 2
        let redis = RedisClient(configuration: redisConfiguration, logger: logger)
        try await Migrator(client: postgres, logger: logger).migrate()

        let producer = EventProducer(rawValue: "bench-\(UUID().uuidString.prefix(6).lowercased())")
        var relayConfiguration = OutboxRelay.Configuration()
        relayConfiguration.pollInterval = .milliseconds(pollMilliseconds)
        let relay = OutboxRelay(postgres: postgres, redis: redis, configuration: relayConfiguration, logger: logger)
        let handler = LatencyRecorder()
        var consumerConfiguration = StreamConsumer<LatencyRecorder>.Configuration(stream: Streams.stream(for: producer), group: "bench")
        consumerConfiguration.concurrency = concurrency
        let consumer = StreamConsumer(postgres: postgres, redis: redis, handler: handler, configuration: consumerConfiguration, logger: logger)
        let relayTask = Task { try await relay.run() }
        let consumerTask = Task { try await consumer.run() }

        let clock = ContinuousClock()
        let writers = self.writers
        /// Appends 1-event transactions from `writers` tasks until `end`; returns how many.
        @Sendable func write(until end: ContinuousClock.Instant) async throws -> Int {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<writers {
                    group.addTask {
                        var count = 0
                        while clock.now < end {
                            _ = try await postgres.withTransaction { transaction in
                                try Outbox.append(
                                    BookingExpired(bookingID: BookingID()), producer: producer, correlationID: "bench", occurredAt: Date(),
                                    in: transaction
                                )
                            }
                            count += 1
                        }
                        return count
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        if warmup > 0 {
            let warmed = try await write(until: clock.now + .seconds(warmup))
            let deadline = clock.now + .seconds(60)
            while handler.count < warmed && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            try await postgres.query("ANALYZE messaging.outbox, messaging.inbox, messaging.aggregate_sequences")
            handler.reset()
        }
        let started = clock.now
        let appended = try await write(until: started + .seconds(seconds))
        let writersStopped = clock.now
        var relayDrained: Duration?
        while clock.now - writersStopped < .seconds(60) {
            let unpublished = try await postgres.query("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL")
            if try unpublished[0].decode(Int.self, at: 0) == 0 {
                relayDrained = clock.now - writersStopped
                break
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        while handler.count < appended && clock.now - writersStopped < .seconds(120) {
            try await Task.sleep(for: .milliseconds(5))
        }
        let finished = handler.lastHandled ?? clock.now
        relayTask.cancel()
        consumerTask.cancel()
        _ = await (try? relayTask.value, try? consumerTask.value)
        await postgres.shutdown()
        await redis.shutdown()

        let elapsed = finished - started
        let elapsedSeconds = elapsed.timeInterval
        let latencies = handler.latencies.sorted()
        func percentile(_ p: Double) -> String {
            guard !latencies.isEmpty else { return "n/a" }
            return String(format: "%.1f ms", latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1000)
        }
        let drained =
            relayDrained.map { String(format: "%.0f ms", $0.timeInterval * 1000) }
            ?? "not within 60 s"
        FileHandle.standardOutput.write(
            Data(
                """
                messaging_events_per_second=\(String(format: "%.0f", Double(handler.count) / elapsedSeconds))
                messaging_appended=\(appended) handled=\(handler.count) writers=\(writers) lanes=\(concurrency) cores=\(ProcessInfo.processInfo.activeProcessorCount)
                messaging_latency_p50=\(percentile(0.5)) p99=\(percentile(0.99)) (append committed -> handled and committed)
                messaging_relay_drained_after_writers_stopped=\(drained)

                """.utf8
            )
        )
    }
}

/// Counts handled events and records append-to-handled latency (taken inside the committing
/// transaction, just before its commit); the effect is the inbox row alone.
final class LatencyRecorder: TransactionalStreamHandler {
    private let state = Mutex<(latencies: [Double], last: ContinuousClock.Instant?)>(([], nil))

    func apply(_ envelope: EventEnvelope, in transaction: PostgresTransaction) throws {
        let latency = Date().timeIntervalSince(envelope.occurredAt)
        state.withLock { state in
            state.latencies.append(latency)
            state.last = .now
        }
    }

    /// Forgets what was handled so far (the warm-up's events).
    func reset() {
        state.withLock { state in
            state.latencies.removeAll()
            state.last = nil
        }
    }

    var count: Int { state.withLock { $0.latencies.count } }
    var latencies: [Double] { state.withLock { $0.latencies } }
    var lastHandled: ContinuousClock.Instant? { state.withLock { $0.last } }
}
