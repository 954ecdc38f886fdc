import ArgumentParser
import Foundation
import Logging
import Messaging
import Postgres
import ServiceKit
import SharedModel
import Synchronization

/// `payout run [--date D]`: creates the date's run (today in `PAYOUT_TIME_ZONE` by default) or finds
/// it, and works it to the end in this process - what a Kubernetes CronJob runs. Another runner
/// holding the run lock is waited for. On a terminal the progress is a bar (host balances done of
/// the total, rate, ETA) on standard error; otherwise progress lines are logged. The summary table
/// goes to standard output. Exit status 0 when the run completed, 1 when it failed reconciliation,
/// 2 for a bad date or setting.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run (or finish) the payout run of a date.",
        discussion: "Options are also read from the environment variable their help names (--payout-time-zone from PAYOUT_TIME_ZONE).")

    @Option(help: "The run's date, YYYY-MM-DD (default: today in PAYOUT_TIME_ZONE).") var date: String?
    @OptionGroup var database: DatabaseOption
    @OptionGroup var operatorOption: OperatorOption
    @OptionGroup(title: "Run options") var options: RunOptions

    func run() async throws {
        let flags = SettingOptions.values(of: options)
        let settings = ServiceLauncher.configuration { try RunSettings(reader: ConfigurationReader(flags: flags, declared: Set(flags.keys))) }
        var runDate: RunDate?
        if let date {
            do {
                runDate = try RunDate(parsing: date)
            } catch {
                Self.fail("--date \(date): \(error)")
            }
        }
        let logger = ServiceLauncher.bootstrap(service: "payout-run", logLevel: .info)
        var configuration = database.configuration()
        // The run lock's connection and the computation's others.
        configuration.maximumConnections = max(2, settings.connections)
        configuration.statementTimeout = .seconds(300)
        let finished = try await withPostgres(configuration: configuration, logger: logger) { postgres in
            let runner = PayoutRunner(postgres: postgres, settings: settings, clock: .system, logger: logger)
            let started: (run: PayoutRun, created: Bool)
            do {
                started = try await runner.start(
                    runDate, audit: operatorOption.audit(command: "payout run", action: "payout_run.started", targetID: nil, outcome: "created"))
            } catch let problem as RunDate.Problem {
                Self.fail("--date: \(problem)")
            }
            let display = ProgressDisplay(terminal: isatty(STDERR_FILENO) == 1, logger: logger)
            display.started(started.run, created: started.created)
            guard let run = try await runner.finish(started.run.id, waiting: true, progress: display.update) else {
                throw CleanExit.message("another runner holds the lock")
            }
            return (run, try await RunViews.totals(of: run.id, on: postgres), try await Self.statusCounts(run.id, postgres: postgres))
        }
        FileHandle.standardOutput.write(Data(RunSummary.table(run: finished.0, totals: finished.1, lines: finished.2).utf8))
        if finished.0.status == .failed { throw ExitCode(1) }
    }

    private static func statusCounts(_ runID: UUID, postgres: PostgresClient) async throws -> [(String, Int)] {
        try await postgres.query("SELECT status, count(*) FROM payout.run_lines WHERE run_id = \(runID) GROUP BY status ORDER BY status").map {
            (try $0.decode(String.self, at: 0), Int(try $0.decode(Int64.self, at: 1)))
        }
    }

    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("payout run: \(message)\n".utf8))
        Foundation.exit(2)
    }
}

/// Shows a run's progress: a bar redrawn in place on a terminal, a log line every 2 s otherwise.
final class ProgressDisplay: Sendable {
    private struct State {
        var started = ContinuousClock.now
        var lastLine: ContinuousClock.Instant?
        var firstDone: Int?
    }

    let terminal: Bool
    let logger: Logger
    private let state = Mutex(State())

    init(terminal: Bool, logger: Logger) {
        self.terminal = terminal
        self.logger = logger
    }

    func started(_ run: PayoutRun, created: Bool) {
        let verb = created ? "created" : (run.isFinished ? "already finished" : "resuming")
        let line = "payout run \(run.runDate) (\(run.id.lowercasedString)) \(verb); cut-off \(RFC3339.string(from: run.cutoff))"
        if terminal { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { logger.info("\(line)") }
    }

    func update(_ progress: PayoutRunner.Progress) {
        switch progress {
        case .waiting:
            let now = ContinuousClock.now
            let due = state.withLock { state -> Bool in
                guard state.lastLine.map({ now - $0 >= .seconds(10) }) ?? true else { return false }
                state.lastLine = now
                return true
            }
            if due { emit("waiting for another runner to release the payout run lock", done: nil) }
        case .computing(_, let done, let total):
            let now = ContinuousClock.now
            let (rate, show) = state.withLock { state -> (Double, Bool) in
                if state.firstDone == nil {
                    state.firstDone = done
                    state.started = now
                }
                let elapsed = now - state.started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let rate = seconds > 0 ? Double(done - (state.firstDone ?? 0)) / seconds : 0
                let show = terminal || done == total || state.lastLine.map { now - $0 >= .seconds(2) } ?? true
                if show { state.lastLine = now }
                return (rate, show)
            }
            guard show else { return }
            let remaining = rate > 0 ? Int((Double(total - done) / rate).rounded(.up)) : nil
            emit(Self.bar(done: done, total: total, rate: rate, eta: remaining), done: (done, total, rate, remaining))
        case .finished(let run):
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            logger.debug("payout run finished", metadata: ["status": "\(run.status.rawValue)"])
        }
    }

    private func emit(_ text: String, done: (Int, Int, Double, Int?)?) {
        if terminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text).utf8))
        } else if let (done, total, rate, eta) = done {
            logger.info(
                "payout run progress",
                metadata: [
                    "hosts_done": "\(done)", "hosts_total": "\(total)", "hosts_per_second": "\(Int(rate))",
                    "eta_seconds": "\(eta.map(String.init) ?? "?")",
                ])
        } else {
            logger.info("\(text)")
        }
    }

    /// `[########------------]  4,000/10,000 hosts  1,234/s  ETA 5s`
    static func bar(done: Int, total: Int, rate: Double, eta: Int?) -> String {
        let width = 30
        let filled = total > 0 ? min(width, done * width / total) : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        return
            "[\(bar)] \(RunSummary.grouped(Int64(done)))/\(RunSummary.grouped(Int64(total))) hosts  \(RunSummary.grouped(Int64(rate)))/s  ETA \(eta.map { "\($0)s" } ?? "?")"
    }
}

/// The table `payout run` ends with.
enum RunSummary {
    static func table(run: PayoutRun, totals: [RunTotal], lines: [(String, Int)]) -> String {
        var text = "payout run \(run.runDate): \(run.status.rawValue)\n"
        text += "  run id    \(run.id.lowercasedString)\n  cut-off   \(RFC3339.string(from: run.cutoff))\n"
        text += "  balances  " + (lines.isEmpty ? "none" : lines.map { "\($0.1) \($0.0)" }.joined(separator: ", ")) + "\n"
        if run.status == .failed {
            text += "  reconciliation failed; nothing was paid and the entries stay payable:\n"
            for mismatch in run.mismatches { text += "    - \(mismatch.check): \(mismatch.detail)\n" }
            return text
        }
        guard !totals.isEmpty else { return text + "  no payouts\n" }
        let header = ["currency", "payouts", "gross", "fees", "refunds", "fee reversals", "disputes", "carried in", "rounding", "net"]
        let rows = totals.map { total -> [String] in
            let money = { (amount: Int64) in Self.amount(amount, currency: total.currency) }
            return [
                total.currency, grouped(Int64(total.payouts)), money(total.gross), money(total.fees), money(total.refunds), money(total.feeReversals),
                money(total.disputes), money(total.carriedIn), money(total.rounding), money(total.net),
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        let render = { (cells: [String]) in
            "  "
                + cells.enumerated().map { index, cell in
                    index == 0
                        ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                        : String(repeating: " ", count: widths[index] - cell.count) + cell
                }.joined(separator: "  ")
        }
        text += render(header) + "\n" + rows.map(render).joined(separator: "\n") + "\n"
        text += "  report    GET /v1/payout-runs/\(run.id.lowercasedString)/report.csv\n"
        return text
    }

    /// Major units with the currency's decimals, e.g. `1,234.50`; the code alone when unknown.
    static func amount(_ minor: Int64, currency: String) -> String {
        guard let code = try? Currency(currency) else { return String(minor) }
        let decimal = Money(amount: minor, currency: code).decimalString
        let negative = decimal.hasPrefix("-")
        let digits = negative ? String(decimal.dropFirst()) : decimal
        let parts = digits.split(separator: ".", maxSplits: 1)
        let whole = grouped(Int64(parts[0]) ?? 0)
        return (negative ? "-" : "") + whole + (parts.count > 1 ? "." + parts[1] : "")
    }

    /// `1234567` -> `1,234,567`.
    static func grouped(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return (value < 0 ? "-" : "") + out
    }
}
