import ArgumentParser
import Foundation
import Logging
import Postgres
import Redis
import ServiceKit

/// `booking check`: the invariant checker over the live database and streams (``InvariantChecks``).
/// Prints one line per check (name, count, OK / VIOLATION) or, with `--json`, one JSON document.
/// Exit status: 0 when every check counts 0, 1 on any violation, 2 on a configuration error or when
/// the checks could not run (a server unreachable, a schema missing).
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the product's invariants over the live database and Redis streams; exit 1 on any violation.")

    @OptionGroup var database: DatabaseOption
    @Option(help: "Redis URL (REDIS_URL), for the stream check.") var redisURL: String?
    @Option(help: "Work younger than this may still be in flight and is not counted, e.g. 60s (CHECK_SETTLE).") var settle: String?
    @Option(help: "The longest an outbox row may stay unpublished, e.g. 60s (CHECK_OUTBOX_BOUND).") var outboxBound: String?
    @Option(help: "The longest a stream entry may stay pending in a consumer group, e.g. 60s (CHECK_PENDING_BOUND).")
    var pendingBound: String?
    @Option(help: "The services' OUTBOX_RETENTION (72h): older outbox rows may be gone.") var outboxRetention: String?
    @Option(help: "payments-webhook's PROVIDER_EVENT_RETENTION (2880h): older deliveries may be gone.") var providerEventRetention: String?
    @Option(help: "Comma-separated streams whose groups' pending entries are checked (empty: none; default: every service's stream).")
    var streams: String?
    @Flag(help: "Also count what only a quiescent database holding one benchmark run must not have (dead letters, pending bookings, ...).")
    var strict = false
    @Flag(help: "Print one JSON document instead of the table.") var json = false

    func run() async throws {
        let (options, redisConfiguration) = ServiceLauncher.configuration {
            let reader = ConfigurationReader(flags: [
                "REDIS_URL": redisURL, "CHECK_SETTLE": settle, "CHECK_OUTBOX_BOUND": outboxBound, "CHECK_PENDING_BOUND": pendingBound,
                "OUTBOX_RETENTION": outboxRetention, "PROVIDER_EVENT_RETENTION": providerEventRetention,
            ])
            let week = Duration.seconds(7 * 86_400)
            var options = InvariantChecks.Options()
            options.settle = try reader.duration("CHECK_SETTLE", default: options.settle, in: .zero...week)
            options.outboxBound = try reader.duration("CHECK_OUTBOX_BOUND", default: options.outboxBound, in: .zero...week)
            options.pendingBound = try reader.duration("CHECK_PENDING_BOUND", default: options.pendingBound, in: .zero...week)
            options.outboxRetention = try reader.duration(
                "OUTBOX_RETENTION", default: options.outboxRetention, in: .seconds(1)...(.seconds(3650 * 86_400)))
            options.providerEventRetention = try reader.duration(
                "PROVIDER_EVENT_RETENTION", default: options.providerEventRetention, in: .seconds(1)...(.seconds(3650 * 86_400)))
            options.strict = strict
            if let streams {
                options.streams = streams.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
            let redisURL = try reader.required("REDIS_URL")
            do {
                return (options, try RedisClient.Configuration(url: redisURL))
            } catch {
                throw ConfigurationError(name: "REDIS_URL", reason: "is not a valid Redis URL")
            }
        }
        _ = database.configuration()  // a missing DATABASE_URL stops here, before any connection
        var logger = Logger(label: "check")
        logger.logLevel = .warning
        let results: [InvariantChecks.Result]
        do {
            results = try await database.withPostgres(label: "check") { postgres in
                var configuration = redisConfiguration
                configuration.maximumConnections = 1
                let redis = RedisClient(configuration: configuration, logger: logger)
                do {
                    let results = try await InvariantChecks(options: options).run(postgres: postgres, redis: options.streams.isEmpty ? nil : redis)
                    await redis.shutdown()
                    return results
                } catch {
                    await redis.shutdown()
                    throw error
                }
            }
        } catch {
            FileHandle.standardError.write(Data("check error: the checks could not run: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let report = CheckReport(results: results, strict: strict)
        FileHandle.standardOutput.write(Data((json ? try report.json() : report.table()).utf8))
        if report.violations > 0 { throw ExitCode(1) }
    }
}

/// What `booking check` prints.
struct CheckReport: Sendable {
    let results: [InvariantChecks.Result]
    let strict: Bool

    /// The checks whose count is not 0.
    var violations: Int { results.filter { $0.violated(strict: strict) }.count }

    /// The status word of a line: OK or VIOLATION for checks, INFO for sizes (and, unless strict,
    /// for the strict-only rows).
    func status(_ result: InvariantChecks.Result) -> String {
        switch result.kind {
        case .check: result.count == 0 ? "OK" : "VIOLATION"
        case .strict where strict: result.count == 0 ? "OK" : "VIOLATION"
        case .strict, .info: "INFO"
        }
    }

    /// One line per check: name, count, status, then what it counts; a summary line last.
    func table() -> String {
        let nameWidth = max(results.map(\.name.count).max() ?? 0, "check".count)
        let countWidth = max(results.map { String($0.count).count }.max() ?? 0, "count".count)
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(width - text.count, 0)) }
        func padLeft(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(width - text.count, 0)) + text }
        var lines = ["\(pad("check", nameWidth))  \(padLeft("count", countWidth))  \(pad("status", 9))  meaning"]
        for result in results {
            lines.append("\(pad(result.name, nameWidth))  \(padLeft(String(result.count), countWidth))  \(pad(status(result), 9))  \(result.summary)")
        }
        let checked = results.filter { $0.kind == .check || ($0.kind == .strict && strict) }.count
        lines.append(violations == 0 ? "all \(checked) checks OK" : "\(violations) of \(checked) checks VIOLATED")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `{"ok": Bool, "violations": N, "strict": Bool, "checks": [{name, kind, count, status, summary}]}`.
    func json() throws -> String {
        struct Line: Encodable {
            let name: String
            let kind: String
            let count: Int
            let status: String
            let summary: String
        }
        struct Document: Encodable {
            let ok: Bool
            let violations: Int
            let strict: Bool
            let checks: [Line]
        }
        let lines = results.map { result in
            Line(
                name: result.name, kind: result.kind == .info || (result.kind == .strict && !strict) ? "info" : "check", count: result.count,
                status: status(result), summary: result.summary)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(Document(ok: violations == 0, violations: violations, strict: strict, checks: lines))
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
