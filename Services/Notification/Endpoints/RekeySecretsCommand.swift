import ArgumentParser
import Foundation
import Logging
import Messaging
import Postgres
import ServiceKit
import SharedModel

/// The two secrets keys, as options of `serve` and `rekey-secrets`.
struct SecretsKeyOptions: ParsableArguments {
    @Option(help: "Base64 of the 32-byte key that encrypts endpoint secrets at rest (NOTIFICATION_SECRETS_KEY, required).")
    var notificationSecretsKey: String?
    @Option(
        help:
            "The key being replaced during a re-key: secrets sealed with it still open until `notification rekey-secrets` seals them again (NOTIFICATION_SECRETS_KEY_PREVIOUS, optional)."
    )
    var notificationSecretsKeyPrevious: String?
}

/// `notification rekey-secrets`: seals every endpoint's signing secrets again under
/// `NOTIFICATION_SECRETS_KEY`, opening each with it or with `NOTIFICATION_SECRETS_KEY_PREVIOUS`, so the
/// old key can be dropped while subscribers keep their secrets (docs/operations.md,
/// `NOTIFICATION_SECRETS_KEY`). One transaction with the rows locked and an audit row; a secret that
/// opens with neither key writes nothing and exits 1 naming its endpoint. Running it again changes
/// nothing. Prints a one-line summary.
struct RekeySecretsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey-secrets", abstract: "Seal every endpoint secret again under NOTIFICATION_SECRETS_KEY.",
        discussion: "Options are also read from the environment variable their help names (--database-url from DATABASE_URL).")

    @OptionGroup var database: DatabaseOption
    @OptionGroup var operatorOption: OperatorOption
    @OptionGroup(title: "Keys") var keys: SecretsKeyOptions

    func run() async throws {
        let flags = SettingOptions.values(of: keys)
        let box = ServiceLauncher.configuration {
            let keys = try NotificationConfiguration.secretsKeys(ConfigurationReader(flags: flags, declared: Set(flags.keys)))
            return SecretBox(keys: [keys.current] + (keys.previous.map { [$0] } ?? []))
        }
        let logger = ServiceLauncher.bootstrap(service: "notification-rekey", logLevel: .info)
        let audit = operatorOption.audit(command: "notification rekey-secrets", action: "secrets.rekeyed", targetID: nil, outcome: "completed")
        let result = try await withPostgres(configuration: database.configuration(), logger: logger) { postgres in
            try await SecretRekey.run(box: box, audit: audit, on: postgres)
        }
        guard result.unreadable.isEmpty else {
            let names = result.unreadable.map { "\($0.endpoint.lowercasedString) #\($0.position)" }.joined(separator: ", ")
            FileHandle.standardError.write(
                Data(
                    "notification rekey-secrets: \(result.unreadable.count) secrets open with neither key, nothing was changed: \(names)\n"
                        .utf8))
            throw ExitCode(1)
        }
        FileHandle.standardOutput.write(
            Data(
                "notification rekey-secrets: \(result.resealed + result.current) secrets of \(result.endpoints) endpoints; \(result.resealed) sealed again under the current key, \(result.current) already were\n"
                    .utf8))
    }
}

/// The re-key itself (tests call it without the command).
enum SecretRekey {
    struct Result: Sendable, Equatable {
        var endpoints = 0
        var resealed = 0
        var current = 0
        var unreadable: [Unreadable] = []
    }

    struct Unreadable: Sendable, Equatable {
        var endpoint: UUID
        var position: Int32
    }

    static func run(box: SecretBox, audit: AuditRecord, clock: WallClock = .system, on postgres: PostgresClient) async throws -> Result {
        try await postgres.withTransaction { transaction in
            var result = Result()
            var updates: [(endpoint: UUID, position: Int32, sealed: Data)] = []
            var endpoints = Set<UUID>()
            for row in try transaction.query(
                "SELECT endpoint_id, position, sealed FROM notification.endpoint_secrets ORDER BY endpoint_id, position FOR UPDATE")
            {
                let (endpoint, position) = (try row.decode(UUID.self, at: 0), try row.decode(Int32.self, at: 1))
                endpoints.insert(endpoint)
                do {
                    if let sealed = try box.resealed(try row.decode(Data.self, at: 2), endpoint: endpoint) {
                        updates.append((endpoint, position, sealed))
                    } else {
                        result.current += 1
                    }
                } catch {
                    result.unreadable.append(Unreadable(endpoint: endpoint, position: position))
                }
            }
            result.endpoints = endpoints.count
            guard result.unreadable.isEmpty else { return result }
            for update in updates {
                try transaction.query(
                    """
                    UPDATE notification.endpoint_secrets SET sealed = \(update.sealed)
                    WHERE endpoint_id = \(update.endpoint) AND position = \(update.position)
                    """)
            }
            result.resealed = updates.count
            var record = audit
            record.details = ["resealed": .integer(Int64(result.resealed)), "already_current": .integer(Int64(result.current))]
            try AuditLog.record(record, clock: clock, in: transaction)
            return result
        }
    }
}
