import Foundation
import Logging
import Messaging
import ServiceLifecycle
import SharedModel

/// Works payout runs inside `payout serve`: the ones the API starts, unfinished ones (a runner killed
/// mid-run, found at start-up and every `sweepInterval`), and, with `PAYOUT_SCHEDULE`, the previous
/// day's run each day at that time. Runs are worked one at a time under ``PayoutRunner``'s lock, so
/// of N replicas one works each run and the others leave it. On shutdown the current batch commits
/// (or rolls back) and the run stays resumable.
final class RunExecutor: Service, Sendable {
    let runner: PayoutRunner
    let schedule: TimeOfDay?
    let logger: Logger
    let sweepInterval: Duration
    private let doorbell = Doorbell()

    init(runner: PayoutRunner, schedule: TimeOfDay?, logger: Logger, sweepInterval: Duration = .seconds(60)) {
        self.runner = runner
        self.schedule = schedule
        self.logger = logger
        self.sweepInterval = sweepInterval
    }

    /// Asks for `runID` to be worked soon (the executor works every unfinished run it finds).
    func submit(_ runID: UUID) { doorbell.ring() }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            // The latest occurrence first: a replica that was down at the scheduled time catches up on
            // start (creating a run that exists returns it, so this is harmless otherwise).
            var nextScheduled = self.schedule.map { self.nextOccurrence(of: $0, after: self.runner.clock.now().addingTimeInterval(-86_401)) }
            while !Task.isCancelled {
                if let due = nextScheduled, self.runner.clock.now() >= due {
                    await self.runScheduled(at: due)
                    nextScheduled = self.schedule.map { self.nextOccurrence(of: $0, after: due) }
                }
                await self.finishUnfinished()
                var wait = self.sweepInterval
                if let due = nextScheduled { wait = min(wait, .seconds(max(0, due.timeIntervalSince(self.runner.clock.now())))) }
                await self.doorbell.wait(upTo: wait)
            }
        }
    }

    /// The run of the day before `due` (in `PAYOUT_TIME_ZONE`), created if need be; every replica
    /// tries, the database keeps one run per date and the lock lets one work it.
    private func runScheduled(at due: Date) async {
        let date = RunDate(containing: due, in: runner.settings.timeZone).previous
        do {
            let started = try await runner.start(date)
            logger.info("scheduled payout run", metadata: ["run_date": "\(date)", "created": "\(started.created)"])
        } catch {
            logger.error("the scheduled payout run could not be created", metadata: ["run_date": "\(date)", "error": "\(error)"])
        }
    }

    private func finishUnfinished() async {
        do {
            for id in try await runner.postgres.withTransaction(readOnly: true, { try PayoutRunStore.unfinished(in: $0) }) {
                try Task.checkCancellation()
                // Without waiting: a runner holding the lock (another process) is working it.
                guard try await runner.finish(id, waiting: false) != nil else { return }
            }
        } catch is CancellationError {
            return
        } catch {
            logger.error("payout run interrupted; it resumes on the next attempt", metadata: ["error": "\(error)"])
        }
    }

    /// The next instant after `now` at `time` of day in the run's time zone.
    func nextOccurrence(of time: TimeOfDay, after now: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = runner.settings.timeZone
        return calendar.nextDate(
            after: now, matching: DateComponents(hour: time.hour, minute: time.minute, second: 0), matchingPolicy: .nextTime)
            ?? now.addingTimeInterval(86_400)
    }
}
