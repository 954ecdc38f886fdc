import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Messaging
import NIOCore
import Postgres
import Redis
import ServiceLifecycle

/// What every service executable is made of: its Postgres and Redis clients, a router with the shared
/// middlewares and health routes, and the long-running services (pools first, so they stop last).
public struct ServiceApplication: Sendable {
    public let settings: ServiceSettings
    public let postgres: PostgresClient
    public let redis: RedisClient
    public let logger: Logger
    /// The stream consumers' and pollers' own pool (`DATABASE_CONSUMER_POOL_SIZE`): a bulkhead, so
    /// requests queueing for `postgres` under load never starve the work that finishes what they
    /// started (e.g. confirming paid bookings), and the other way round.
    public let consumerPostgres: PostgresClient
    /// The outbox relay's own connection: a leading relay holds its session (and advisory lock) for
    /// as long as it leads, so it must not take one of the request pool's connections.
    let relayPostgres: PostgresClient
    /// Graceful shutdown's first step: `/readyz` answers 503 for `SHUTDOWN_DRAIN_DELAY` while every
    /// route is still served.
    public let drain: ShutdownDrain

    public init(settings: ServiceSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        self.postgres = PostgresClient(configuration: settings.postgres, logger: logger)
        self.redis = RedisClient(configuration: settings.redis, logger: logger)
        var consumerConfiguration = settings.postgres
        consumerConfiguration.maximumConnections = settings.consumerPoolSize
        consumerConfiguration.poolName = "postgres-consumers"
        consumerConfiguration.applicationName = settings.postgres.applicationName + "-consumers"
        self.consumerPostgres = PostgresClient(configuration: consumerConfiguration, logger: logger)
        var relayConfiguration = settings.postgres
        relayConfiguration.maximumConnections = 1
        relayConfiguration.poolName = "postgres-relay"
        relayConfiguration.applicationName = settings.postgres.applicationName + "-outbox-relay"
        self.relayPostgres = PostgresClient(configuration: relayConfiguration, logger: logger)
        self.drain = ShutdownDrain(delay: settings.shutdownDrainDelay, logger: logger)
    }

    /// A router with correlation ids, JSON errors, per-route metrics, the body limit, and
    /// `/healthz`, `/readyz` (503 once shutdown began, see ``drain``), `/metrics`. `redisRequired`
    /// false: the service's HTTP routes need only Postgres (its Redis work is in the background:
    /// consumers, the outbox relay), so a Redis outage leaves `/readyz` 200 with `"redis": "down"`
    /// instead of taking the service out of rotation.
    public func makeRouter(extraChecks: [DependencyCheck] = [], redisRequired: Bool = true) -> Router<ServiceRequestContext> {
        let router = Router(context: ServiceRequestContext.self)
        router.middlewares.add(CorrelationMiddleware())
        // Metrics sit outside the error mapping, so they record the status the client received.
        router.middlewares.add(MetricsMiddleware())
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(BodyLimitMiddleware(limit: settings.maximumBodySize))
        HealthRoutes.add(to: router, checks: [.postgres(postgres), .redis(redis, required: redisRequired)] + extraChecks, drain: drain)
        DeadLetterRoutes.add(
            to: router, store: DeadLetterStore(postgres: postgres), service: settings.serviceName, authentication: adminAuthentication)
        AuditRoutes.add(to: router, log: AuditLog(postgres: postgres), service: settings.serviceName, authentication: adminAuthentication)
        return router
    }

    /// The outbox relay's settings from the service configuration.
    var relayConfiguration: OutboxRelay.Configuration {
        var configuration = OutboxRelay.Configuration()
        configuration.retention = settings.outboxRetention
        configuration.deadLetterRetention = settings.deadLetterRetention
        return configuration
    }

    /// Middleware for routes that need a client API key (or the admin token).
    public var clientAuthentication: AuthenticationMiddleware {
        AuthenticationMiddleware(required: .client, adminTokens: settings.adminTokens, apiKeys: settings.apiKeys)
    }

    /// Middleware for operator routes.
    public var adminAuthentication: AuthenticationMiddleware {
        AuthenticationMiddleware(required: .admin, adminTokens: settings.adminTokens, apiKeys: settings.apiKeys)
    }

    /// Where the HTTP server listens.
    public var serverConfiguration: ApplicationConfiguration {
        ApplicationConfiguration(address: .hostname(settings.host, port: settings.port), serverName: settings.serviceName)
    }

    /// HTTP/1.1 with the idle timeout (`HTTP_IDLE_TIMEOUT`: a connection that sends nothing that long,
    /// before a request or in the middle of one, is closed) and the connection limit
    /// (`HTTP_MAX_CONNECTIONS`: a connection beyond it is closed as soon as it is accepted). Each value
    /// of this property is one server's builder with a count of its own.
    public var httpServer: HTTPServerBuilder {
        let limit = ConnectionLimit(maximum: settings.httpMaximumConnections)
        return .http1(
            configuration: .init(
                additionalChannelHandlers: [ConnectionLimitHandler(limit: limit)],
                idleTimeout: TimeAmount(settings.httpIdleTimeout)
            )
        )
    }

    /// The HTTP application with the outbox relay, behind the shutdown ``drain``. `services`
    /// (consumers, pollers) run after the pools start and stop before they close. Every instance runs a
    /// relay on one connection of its own (beside `DATABASE_POOL_SIZE` and `DATABASE_CONSUMER_POOL_SIZE`);
    /// one of the instances leads at a time.
    public func makeApplication(router: Router<ServiceRequestContext>, services: [any Service] = []) -> some Service {
        let application = Application(
            router: router,
            server: httpServer,
            configuration: serverConfiguration,
            services: [
                postgres, redis, consumerPostgres, relayPostgres, RedisEvictionCheck(redis: redis, logger: logger),
                OutboxRelay(postgres: relayPostgres, redis: redis, configuration: relayConfiguration, logger: logger),
            ] + services,
            logger: logger
        )
        return DrainingApplication(application: application, drain: drain)
    }
}

/// Process-level start-up shared by the executables.
public enum ServiceLauncher {
    /// Loads configuration; a ``ConfigurationError`` ends the process with one line naming the setting
    /// on standard error and exit status 2.
    public static func configuration<T>(_ load: () throws -> T) -> T {
        do {
            return try load()
        } catch let error as ConfigurationError {
            exitWithConfigurationError(error)
        } catch {
            exitWithConfigurationError(ConfigurationError(name: "configuration", reason: "could not be loaded: \(error)"))
        }
    }

    private static func exitWithConfigurationError(_ error: ConfigurationError) -> Never {
        FileHandle.standardError.write(Data("configuration error: \(error.name) \(error.reason)\n".utf8))
        exit(2)
    }

    /// Ignores SIGPIPE (hiredis and libpq may write to closed sockets), installs JSON-lines logging and
    /// the Prometheus metrics backend, and returns the service's logger.
    public static func bootstrap(service: String, logLevel: Logger.Level) -> Logger {
        signal(SIGPIPE, SIG_IGN)
        LoggingSystem.bootstrap { label in
            JSONLogHandler(label: label, service: service, level: logLevel)
        }
        PlatformMetrics.bootstrap()
        var logger = Logger(label: service)
        logger.logLevel = logLevel
        return logger
    }
}
