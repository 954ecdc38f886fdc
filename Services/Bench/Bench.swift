import ArgumentParser
import Foundation
import Logging
import Postgres
import Redis
import SharedModel

/// `platform-bench`: measures the platform's clients on live servers. `scripts/bench` runs it next to
/// the servers' own benchmark tools and prints the ratios.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "platform-bench",
        abstract:
            "Throughput and latency of the platform's Postgres and Redis clients, of the booking saga and of webhook deliveries end to end; fixtures for timing payout runs.",
        subcommands: [
            PostgresSelect.self, RedisSet.self, MessagingEndToEnd.self, SagaEndToEnd.self, NotificationEndToEnd.self, Receiver.self,
            PayoutFixture.self, OpenLoop.self, JSONBench.self, StatementBench.self,
        ]
    )
}

/// Options every benchmark shares.
struct LoadOptions: ParsableArguments {
    @Option(help: "Connections in the client's pool.") var connections: Int = 4
    @Option(help: "Concurrent callers.") var callers: Int = 8
    @Option(help: "Seconds to measure (after a one-second warm-up).") var seconds: Int = 10
}

/// `SELECT 1` round trips through the Postgres pool.
struct PostgresSelect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "postgres", abstract: "SELECT 1 round trips per second.")
    @Option(help: "Postgres URL.") var databaseURL: String
    @Option(
        help:
            "Run SELECT 1 with sharedQuery on this many shared connections (DATABASE_SHARED_CONNECTIONS); 0 leases a pooled connection per call (query)."
    )
    var sharedConnections: Int = 0
    @OptionGroup var load: LoadOptions

    func run() async throws {
        var configuration = try PostgresClient.Configuration(url: databaseURL)
        configuration.maximumConnections = load.connections
        configuration.sharedConnections = max(1, sharedConnections)
        let client = PostgresClient(configuration: configuration, logger: Logger(label: "bench"))
        let shared = sharedConnections > 0
        let result = try await measure(load) {
            if shared { try await client.sharedQuery("SELECT 1") } else { try await client.query("SELECT 1") }
        }
        await client.shutdown()
        result.report(metric: "postgres_select1_per_second", load: load)
    }
}

/// `SET` commands through the Redis pool.
struct RedisSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "redis", abstract: "SET commands per second.")
    @Option(help: "Redis URL.") var redisURL: String
    @Option(help: "Connections the callers' commands share (REDIS_SHARED_CONNECTIONS).") var sharedConnections: Int = 2
    @OptionGroup var load: LoadOptions

    func run() async throws {
        var configuration = try RedisClient.Configuration(url: redisURL)
        configuration.maximumConnections = load.connections
        configuration.sharedConnections = sharedConnections
        let client = RedisClient(configuration: configuration, logger: Logger(label: "bench"))
        let value = RedisArgument(String(repeating: "x", count: 3))
        let result = try await measure(load) { try await client.send("SET", "bench:key", value) }
        await client.shutdown()
        result.report(metric: "redis_set_per_second", load: load)
    }
}

/// Operations completed in the measured window, and their latencies.
struct LoadResult {
    var operations: Int
    var elapsed: Duration
    var latencies: [Duration]

    func report(metric: String, load: LoadOptions) {
        let seconds = elapsed.timeInterval
        let rate = Double(operations) / seconds
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> String {
            guard !sorted.isEmpty else { return "n/a" }
            let value = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
            return String(format: "%.3f ms", value.timeInterval * 1000)
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        FileHandle.standardOutput.write(
            Data(
                """
                \(metric)=\(String(format: "%.0f", rate))
                \(metric.replacingOccurrences(of: "_per_second", with: ""))_p50=\(percentile(0.5)) p99=\(percentile(0.99)) \
                operations=\(operations) callers=\(load.callers) connections=\(load.connections) cores=\(cores)

                """.utf8
            )
        )
    }
}

/// Runs `operation` from `load.callers` concurrent tasks: one second of warm-up, then `load.seconds`
/// measured.
func measure(_ load: LoadOptions, _ operation: @escaping @Sendable () async throws -> Void) async throws -> LoadResult {
    let clock = ContinuousClock()
    let warmUpEnd = clock.now + .seconds(1)
    let end = warmUpEnd + .seconds(load.seconds)
    let perCaller = try await withThrowingTaskGroup(of: [Duration].self) { group in
        for _ in 0..<load.callers {
            group.addTask {
                var latencies: [Duration] = []
                latencies.reserveCapacity(200_000)
                while true {
                    let start = clock.now
                    if start >= end { break }
                    try await operation()
                    if start >= warmUpEnd { latencies.append(clock.now - start) }
                }
                return latencies
            }
        }
        return try await group.reduce(into: [[Duration]]()) { $0.append($1) }
    }
    let latencies = perCaller.flatMap { $0 }
    return LoadResult(operations: latencies.count, elapsed: .seconds(load.seconds), latencies: latencies)
}
