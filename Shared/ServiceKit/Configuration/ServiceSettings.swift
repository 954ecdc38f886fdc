import ArgumentParser
import Logging
import NIOCore
import Postgres
import Redis

/// The settings every platform service shares (``ServiceSettings``), as options of `serve`; each is also
/// read from the environment variable its help names (``SettingOptions``). A service's own options
/// include these with `@OptionGroup(title: "Shared options") var shared: ServiceOptions`.
public struct ServiceOptions: ParsableArguments, Sendable {
    @Option(help: "Address to bind (HOST, default 0.0.0.0).") var host: String?
    @Option(help: "Port to listen on (PORT; 8080 booking, 8081 payments-webhook, 8082 notification, 8083 payout).") var port: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical (LOG_LEVEL, default info).") var logLevel: String?
    @Option(help: "Operator token for admin routes (ADMIN_TOKEN, required).") var adminToken: String?
    @Option(help: "The operator token being replaced, accepted beside ADMIN_TOKEN during a rotation (ADMIN_TOKEN_PREVIOUS, optional).")
    var adminTokenPrevious: String?
    @Option(help: "Client API keys, comma-separated, each name:key or key (API_KEYS; required by services with public routes).")
    var apiKeys: String?
    @Option(help: "Postgres URL (DATABASE_URL, required).") var databaseURL: String?
    @Option(help: "Request pool connections (DATABASE_POOL_SIZE, default 8).") var databasePoolSize: String?
    @Option(help: "Consumer and poller pool connections (DATABASE_CONSUMER_POOL_SIZE, default 8; booking 16).")
    var databaseConsumerPoolSize: String?
    @Option(
        help:
            "Postgres connections short statements share, pipelined across callers (DATABASE_SHARED_CONNECTIONS, default 1 on up to 2 cores, else 2)."
    )
    var databaseSharedConnections: String?
    @Option(help: "Longest wait for a free Postgres connection, e.g. 5s (DATABASE_POOL_WAIT).") var databasePoolWait: String?
    @Option(help: "Postgres connect timeout, e.g. 5s (DATABASE_CONNECT_TIMEOUT).") var databaseConnectTimeout: String?
    @Option(help: "Postgres statement timeout, e.g. 30s (DATABASE_STATEMENT_TIMEOUT).") var databaseStatementTimeout: String?
    @Option(help: "Redis URL, redis://host:port[/db] (REDIS_URL, required).") var redisURL: String?
    @Option(help: "Redis pool connections, for blocking and state-changing commands (REDIS_POOL_SIZE, default 8).")
    var redisPoolSize: String?
    @Option(
        help: "Redis connections every other command shares, pipelined across callers (REDIS_SHARED_CONNECTIONS, default 1 on up to 2 cores, else 2)."
    )
    var redisSharedConnections: String?
    @Option(help: "Longest wait for a free Redis connection, e.g. 5s (REDIS_POOL_WAIT).") var redisPoolWait: String?
    @Option(help: "Redis command timeout, e.g. 5s (REDIS_COMMAND_TIMEOUT).") var redisCommandTimeout: String?
    @Option(help: "Largest request body in bytes; larger ones get 413 (MAX_BODY_BYTES).") var maxBodyBytes: String?
    @Option(help: "Close an HTTP connection that sends nothing for this long, e.g. 60s (HTTP_IDLE_TIMEOUT).")
    var httpIdleTimeout: String?
    @Option(help: "The most HTTP connections served at once; more wait to be accepted (HTTP_MAX_CONNECTIONS, default 4096).")
    var httpMaxConnections: String?
    @Option(
        help: "After SIGTERM, how long /readyz answers 503 while every route is still served, e.g. 10s (SHUTDOWN_DRAIN_DELAY, default 0s)."
    )
    var shutdownDrainDelay: String?
    @Option(help: "How long published outbox rows are kept for republishing, e.g. 72h (OUTBOX_RETENTION).") var outboxRetention: String?
    @Option(help: "How long closed dead letters are kept, e.g. 720h; unset keeps them (DEAD_LETTER_RETENTION).")
    var deadLetterRetention: String?
    @Option(help: "How long consumers' inbox rows are kept, at least OUTBOX_RETENTION, e.g. 336h (INBOX_RETENTION).")
    var inboxRetention: String?

    public init() {}
}

/// The settings every service shares (DESIGN.md, Configuration).
public struct ServiceSettings: Sendable {
    /// The service's name in logs and metrics, e.g. `booking`.
    public var serviceName: String
    public var host: String
    public var port: Int
    public var logLevel: Logger.Level
    public var postgres: PostgresClient.Configuration
    /// Connections of the pool the stream consumers and pollers use (`DATABASE_CONSUMER_POOL_SIZE`).
    public var consumerPoolSize: Int
    public var redis: RedisClient.Configuration
    /// The operator token for admin routes.
    public var adminToken: String
    /// The token being replaced (`ADMIN_TOKEN_PREVIOUS`), accepted beside ``adminToken`` while operators
    /// and their scripts move to the new one; nil outside a rotation.
    public var adminTokenPrevious: String?
    /// The admin tokens accepted: ``adminToken``, then ``adminTokenPrevious`` when set.
    public var adminTokens: [String] { [adminToken] + (adminTokenPrevious.map { [$0] } ?? []) }
    /// Client application keys for public routes; empty for services that have none.
    public var apiKeys: [String]
    /// The largest request body accepted (bytes); larger bodies get 413.
    public var maximumBodySize: Int
    /// A connection that sends nothing for this long (no request started, or a request stalled while it is
    /// read) is closed (`HTTP_IDLE_TIMEOUT`, default 60 s), so slow or silent clients cannot hold it.
    public var httpIdleTimeout: Duration
    /// The most HTTP connections served at once (`HTTP_MAX_CONNECTIONS`, default 4096); further ones
    /// wait in the listen backlog until one closes.
    public var httpMaximumConnections: Int
    /// After SIGTERM (or SIGINT), how long `/readyz` answers 503 `shutting_down` while the server still
    /// serves every route, before it stops accepting (`SHUTDOWN_DRAIN_DELAY`, default 0: at once). For a
    /// load balancer that polls `/readyz`: at least its interval times the failures it needs.
    public var shutdownDrainDelay: Duration
    /// How long published outbox rows are kept for republishing after Redis lost data (`OUTBOX_RETENTION`).
    public var outboxRetention: Duration
    /// How long closed dead letters are kept (`DEAD_LETTER_RETENTION`); nil (the default) keeps them forever.
    public var deadLetterRetention: Duration?
    /// How long a consumer's inbox rows (the events it applied) are kept (`INBOX_RETENTION`, default
    /// 14 days); never less than `OUTBOX_RETENTION`, or a republished event could be applied twice.
    public var inboxRetention: Duration

    /// Loads the shared settings.
    /// - Parameters:
    ///   - requiresAPIKeys: whether the service has public routes, so `API_KEYS` is required.
    public init(
        serviceName: String,
        defaultPort: Int,
        requiresAPIKeys: Bool,
        defaultMaximumBodySize: Int = 1 << 20,
        defaultConsumerPoolSize: Int = 8,
        reader: ConfigurationReader
    ) throws(ConfigurationError) {
        self.serviceName = serviceName
        self.host = reader.string("HOST") ?? "0.0.0.0"
        self.port = try reader.integer("PORT", default: defaultPort, in: 1...65535)
        self.logLevel = try reader.logLevel()
        let databaseURL = try reader.required("DATABASE_URL")
        do {
            self.postgres = try PostgresClient.Configuration(url: databaseURL)
        } catch {
            throw ConfigurationError(name: "DATABASE_URL", reason: "is not a valid Postgres URL")
        }
        postgres.maximumConnections = try reader.integer("DATABASE_POOL_SIZE", default: 8, in: 1...200)
        consumerPoolSize = try reader.integer("DATABASE_CONSUMER_POOL_SIZE", default: defaultConsumerPoolSize, in: 1...200)
        let sharedConnections = Self.defaultSharedConnections(cores: System.coreCount)
        postgres.sharedConnections = try reader.integer("DATABASE_SHARED_CONNECTIONS", default: sharedConnections, in: 1...64)
        postgres.maximumPoolWait = try reader.duration("DATABASE_POOL_WAIT", default: .seconds(5), in: .milliseconds(1)...(.seconds(120)))
        postgres.connectTimeout = try reader.duration("DATABASE_CONNECT_TIMEOUT", default: .seconds(5), in: .seconds(1)...(.seconds(120)))
        postgres.statementTimeout = try reader.duration("DATABASE_STATEMENT_TIMEOUT", default: .seconds(30), in: .milliseconds(1)...(.seconds(3600)))
        postgres.applicationName = serviceName
        let redisURL = try reader.required("REDIS_URL")
        do {
            self.redis = try RedisClient.Configuration(url: redisURL)
        } catch {
            throw ConfigurationError(name: "REDIS_URL", reason: "is not a valid Redis URL (redis://host:port[/db])")
        }
        redis.maximumConnections = try reader.integer("REDIS_POOL_SIZE", default: 8, in: 1...200)
        redis.sharedConnections = try reader.integer("REDIS_SHARED_CONNECTIONS", default: sharedConnections, in: 1...64)
        redis.maximumPoolWait = try reader.duration("REDIS_POOL_WAIT", default: .seconds(5), in: .milliseconds(1)...(.seconds(120)))
        redis.commandTimeout = try reader.duration("REDIS_COMMAND_TIMEOUT", default: .seconds(5), in: .milliseconds(10)...(.seconds(120)))
        self.adminToken = try reader.secret("ADMIN_TOKEN")
        self.adminTokenPrevious = reader.string("ADMIN_TOKEN_PREVIOUS") == nil ? nil : try reader.secret("ADMIN_TOKEN_PREVIOUS")
        self.apiKeys = requiresAPIKeys ? try reader.secretList("API_KEYS") : []
        self.maximumBodySize = try reader.integer("MAX_BODY_BYTES", default: defaultMaximumBodySize, in: 1024...(64 << 20))
        self.httpIdleTimeout = try reader.duration("HTTP_IDLE_TIMEOUT", default: .seconds(60), in: .milliseconds(100)...(.seconds(3600)))
        self.httpMaximumConnections = try reader.integer("HTTP_MAX_CONNECTIONS", default: 4096, in: 1...1_000_000)
        self.shutdownDrainDelay = try reader.duration("SHUTDOWN_DRAIN_DELAY", default: .zero, in: .zero...(.seconds(300)))
        self.outboxRetention = try reader.duration("OUTBOX_RETENTION", default: .seconds(72 * 3600), in: .seconds(60)...(.seconds(90 * 86_400)))
        self.deadLetterRetention =
            reader.string("DEAD_LETTER_RETENTION") == nil
            ? nil : try reader.duration("DEAD_LETTER_RETENTION", default: .zero, in: .seconds(3600)...(.seconds(3650 * 86_400)))
        self.inboxRetention = try reader.duration("INBOX_RETENTION", default: .seconds(14 * 86_400), in: .seconds(60)...(.seconds(3650 * 86_400)))
        guard inboxRetention >= outboxRetention else {
            throw ConfigurationError(
                name: "INBOX_RETENTION", reason: "must be at least OUTBOX_RETENTION, or a republished event could be applied twice")
        }
    }

    /// The default of `DATABASE_SHARED_CONNECTIONS` and `REDIS_SHARED_CONNECTIONS` on a machine (or a
    /// container's CPU quota) of `cores`: one connection each on up to two cores, two above. Each
    /// shared connection is a thread of its own that sleeps between round trips. On two cores a second
    /// one splits a moderate load into two streams of smaller round trips, each with its own wake-ups
    /// and system calls, and that CPU is taken from the service, Postgres and Redis. Measured on the
    /// bookings pair (2 cores, `docs/performance.md`, "One shared connection on two cores"): with one
    /// each, the median p50 at a fixed 1,480 bookings/s fell from 59 to 14 ms and the closed loop made
    /// 14% more bookings. Above two cores the default stays two, as before: in the pool
    /// microbenchmarks (8 callers doing nothing else) a second connection made 36-60% more commands,
    /// and with more cores its thread competes less with the service's own work. That has not been
    /// measured on a larger machine yet.
    public static func defaultSharedConnections(cores: Int) -> Int { cores <= 2 ? 1 : 2 }
}
