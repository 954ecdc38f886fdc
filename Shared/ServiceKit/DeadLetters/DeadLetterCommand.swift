import ArgumentParser
import Foundation
import Logging
import Messaging
import Postgres
import SharedModel

/// `--database-url` (or `DATABASE_URL`) of an operator command: a small Postgres client.
public struct DatabaseOption: ParsableArguments {
    @Option(help: "Postgres URL (DATABASE_URL).") var databaseURL: String?

    public init() {}

    /// The client's settings; a missing or invalid URL stops the command with one line naming
    /// `DATABASE_URL` and exit status 2.
    public func configuration() -> PostgresClient.Configuration {
        ServiceLauncher.configuration {
            let url = try ConfigurationReader(flags: ["DATABASE_URL": databaseURL]).required("DATABASE_URL")
            do {
                return try PostgresClient.Configuration(url: url)
            } catch {
                throw ConfigurationError(name: "DATABASE_URL", reason: "is not a valid Postgres URL")
            }
        }
    }

    /// Runs `body` with a client of at most two connections and waits for the client's shutdown
    /// before returning or rethrowing.
    public func withPostgres<Value>(label: String, _ body: (PostgresClient) async throws -> Value) async throws -> Value {
        var configuration = configuration()
        configuration.maximumConnections = 2
        return try await ServiceKit.withPostgres(configuration: configuration, logger: Logger(label: label), body)
    }
}

/// `--operator` of an operator command: who performs the action, recorded with it.
public struct OperatorOption: ParsableArguments {
    @Option(name: .customLong("operator"), help: "Who performs the action (default: $USER).") var name: String?

    public init() {}

    /// The name given, else `$USER`, else `cli`.
    public var value: String {
        name ?? ProcessInfo.processInfo.environment["USER"] ?? "cli"
    }

    /// The audit record of a command's action (`cli: <command>`), by this operator, for the service
    /// this executable is (its process name, e.g. `booking`).
    public func audit(command: String, action: String, targetID: String?, outcome: String) -> AuditRecord {
        AuditRecord.command(
            service: ProcessInfo.processInfo.processName, operatorName: value, command: command, action: action, targetID: targetID,
            outcome: outcome)
    }
}

/// `<service> dlq list | show | replay | resolve | discard`: the dead-letter queue from the command line.
/// Output is JSON on standard output; the operator is `--operator` (or `$USER`).
public struct DeadLetterCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect, replay, resolve or discard dead letters.",
        subcommands: [List.self, Show.self, Replay.self, Resolve.self, Discard.self]
    )

    public init() {}

    struct Connection: ParsableArguments {
        @OptionGroup var database: DatabaseOption

        /// Runs `body` with the dead-letter store and closes its connections before returning.
        func withStore<Value>(_ body: (DeadLetterStore) async throws -> Value) async throws -> Value {
            try await database.withPostgres(label: "dlq") { client in try await body(DeadLetterStore(postgres: client)) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters, newest first.")
        @OptionGroup var connection: Connection
        @Option(help: "failure or review") var kind: DeadLetterStore.Kind?
        @Option(help: "open, replayed, resolved or discarded") var status: DeadLetterStore.Status?
        @Option var stream: String?
        @Option var consumer: String?
        @Option var eventType: String?
        @Option(help: "The event's aggregate, e.g. a booking id.") var aggregateID: String?
        @Option var limit: Int = 50
        @Option var cursor: String?

        func run() async throws {
            let filter = DeadLetterStore.Filter(
                kind: kind, status: status, stream: stream, consumer: consumer, eventType: eventType, aggregateID: aggregateID)
            let page = try await connection.withStore { store in try await store.list(filter, cursor: cursor, limit: limit) }
            try output(ListPage("dead_letters", items: page.entries, nextCursor: page.nextCursor))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one dead letter with its event envelope.")
        @OptionGroup var connection: Connection
        @Argument var id: UUID

        func run() async throws {
            let entry = try await connection.withStore { store in try await store.entry(id: id) }
            guard let entry else { throw ValidationError("no dead letter \(id)") }
            try output(entry)
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish a failure's event again (one id, or --all matching filters).")
        @OptionGroup var connection: Connection
        @OptionGroup var operatorOption: OperatorOption
        @Argument var id: UUID?
        @Flag(help: "Replay every open failure matching the filters.") var all = false
        @Option var stream: String?
        @Option var consumer: String?
        @Option var eventType: String?
        @Option var aggregateID: String?

        func validate() throws {
            if (id == nil) == !all { throw ValidationError("give one id, or --all with optional filters") }
        }

        func run() async throws {
            try await connection.withStore { store in
                let audit = operatorOption.audit(
                    command: "dlq replay", action: "dead_letter.replayed", targetID: id?.lowercasedString, outcome: "replayed")
                if let id {
                    try output(["outcome": "\(try await store.replay(id: id, operatorName: operatorOption.value, audit: audit))"])
                } else {
                    let filter = DeadLetterStore.Filter(stream: stream, consumer: consumer, eventType: eventType, aggregateID: aggregateID)
                    try output(["replayed": try await store.replayAll(filter, operatorName: operatorOption.value, audit: audit)])
                }
            }
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close an open entry as handled, with a note.")
        @OptionGroup var connection: Connection
        @OptionGroup var operatorOption: OperatorOption
        @Argument var id: UUID
        @Option var note: String

        func run() async throws {
            let audit = operatorOption.audit(
                command: "dlq resolve", action: "dead_letter.resolved", targetID: id.lowercasedString, outcome: "resolved")
            let outcome = try await connection.withStore { store in
                try await store.resolve(id: id, note: note, operatorName: operatorOption.value, audit: audit)
            }
            try output(["outcome": "\(outcome)"])
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close an open entry as not to be processed, with the reason.")
        @OptionGroup var connection: Connection
        @OptionGroup var operatorOption: OperatorOption
        @Argument var id: UUID
        @Option var reason: String

        func run() async throws {
            let outcome = try await connection.withStore { store in
                try await store.discard(
                    id: id, reason: reason, operatorName: operatorOption.value,
                    audit: operatorOption.audit(
                        command: "dlq discard", action: "dead_letter.discarded", targetID: id.lowercasedString, outcome: "discarded"))
            }
            try output(["outcome": "\(outcome)"])
        }
    }
}

extension DeadLetterStore.Kind: ExpressibleByArgument {}
extension DeadLetterStore.Status: ExpressibleByArgument {}
extension UUID: @retroactive ExpressibleByArgument {
    public init?(argument: String) { self.init(uuidString: argument) }
}

/// Writes a JSON document and a newline to standard output (command output, not a log).
public func output(_ value: some Encodable) throws {
    var data = try JSONEncoder.platform.encode(value)
    data.append(0x0A)
    FileHandle.standardOutput.write(data)
}
