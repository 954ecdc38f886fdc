import ArgumentParser
import Hummingbird
import Logging
import ServiceLifecycle

/// What an executable's `serve` runs: its settings as options, how they become its configuration, and
/// the application built from it. ``ServeCommand`` does the rest the same way for every executable:
/// flags over the environment over the defaults, one line naming a missing or invalid setting and exit
/// status 2, JSON logs, metrics, and the application until SIGTERM or SIGINT begins its graceful shutdown.
public protocol ServiceExecutable {
    /// Every setting `serve` reads, each an `@Option var name: String?` whose help names its environment
    /// variable (``SettingOptions``); a platform service includes ``ServiceOptions`` as an `@OptionGroup`.
    associatedtype Options: ParsableArguments
    /// The settings once read and checked.
    associatedtype Configuration: Sendable
    /// The application `serve` runs: a platform service's ``ServiceApplication/makeApplication(router:services:)``.
    associatedtype Served: Service

    /// The name in logs and metrics and the executable's command name, e.g. `booking`.
    static var serviceName: String { get }
    /// `serve`'s one-line help, e.g. "Serve the booking API."
    static var serveAbstract: String { get }
    /// Reads the settings; throws the first missing or invalid one.
    static func configuration(from reader: ConfigurationReader) throws(ConfigurationError) -> Configuration
    /// The log level the configuration asks for.
    static func logLevel(of configuration: Configuration) -> Logger.Level
    /// The whole application, built without running it (tests build it the same way).
    static func application(_ configuration: Configuration, logger: Logger) -> Served
}

/// A configuration that reads itself: what most services' `Configuration` is, so their
/// ``ServiceExecutable`` needs neither ``ServiceExecutable/configuration(from:)`` nor
/// ``ServiceExecutable/logLevel(of:)``.
public protocol ServeConfiguration: Sendable {
    /// Reads the settings; throws the first missing or invalid one.
    init(reader: ConfigurationReader) throws(ConfigurationError)
    /// The log level the settings ask for.
    var logLevel: Logger.Level { get }
}

extension ServiceExecutable where Configuration: ServeConfiguration {
    public static func configuration(from reader: ConfigurationReader) throws(ConfigurationError) -> Configuration {
        try Configuration(reader: reader)
    }

    public static func logLevel(of configuration: Configuration) -> Logger.Level { configuration.logLevel }
}

extension ServiceExecutable where Configuration == ServiceSettings {
    public static func logLevel(of configuration: ServiceSettings) -> Logger.Level { configuration.logLevel }
}

/// A platform service with only the shared settings (``ServiceOptions``, ``ServiceSettings``) and no
/// public routes: it names itself, its default port and its application.
public protocol SharedSettingsExecutable: ServiceExecutable where Options == ServiceOptions, Configuration == ServiceSettings {
    /// The port when neither `--port` nor `PORT` is given.
    static var defaultPort: Int { get }
}

extension SharedSettingsExecutable {
    public static func configuration(from reader: ConfigurationReader) throws(ConfigurationError) -> ServiceSettings {
        try ServiceSettings(serviceName: serviceName, defaultPort: defaultPort, requiresAPIKeys: false, reader: reader)
    }
}

/// `<executable> serve`: the one serve command of every executable, generic over its service.
public struct ServeCommand<Executable: ServiceExecutable>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "serve",
            abstract: Executable.serveAbstract,
            discussion: """
                Each option is also read from the environment variable its help names (--database-url from DATABASE_URL): \
                a flag wins over the environment, which wins over the default, and an empty value counts as unset. \
                A missing or invalid setting stops start-up with one line naming it and exit status 2.
                """
        )
    }

    @OptionGroup var options: Executable.Options

    public init() {}

    public func run() async throws {
        let flags = SettingOptions.values(of: options)
        let reader = ConfigurationReader(flags: flags, declared: Set(flags.keys))
        let configuration = ServiceLauncher.configuration { try Executable.configuration(from: reader) }
        let logger = ServiceLauncher.bootstrap(service: Executable.serviceName, logLevel: Executable.logLevel(of: configuration))
        let application = Executable.application(configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

extension CommandConfiguration {
    /// A platform service's executable: `serve` (the default), `migrate`, `dlq` and `subcommands`.
    public static func service<Executable: ServiceExecutable>(
        _ executable: Executable.Type, abstract: String, subcommands: [any ParsableCommand.Type] = []
    ) -> CommandConfiguration {
        CommandConfiguration(
            commandName: Executable.serviceName,
            abstract: abstract,
            subcommands: [ServeCommand<Executable>.self, MigrateCommand.self, DeadLetterCommand.self] + subcommands,
            defaultSubcommand: ServeCommand<Executable>.self
        )
    }
}
