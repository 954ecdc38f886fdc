import Foundation
import Synchronization
import Testing

@testable import Bench

/// The open loop's scheduler with a stand-in for the HTTP calls: what it records must be the
/// latency from each arrival's due time, so that a slow service shows up in full (coordinated
/// omission corrected), and only the measured window counts.
@Suite("Open-loop schedule")
struct OpenLoopScheduleTests {
    @Test("a service slower than the arrival rate: the queueing counts, not just the service time")
    func queueingIsMeasured() async {
        // 200 arrivals at 200/s, one at a time, each taking 20 ms: the service manages 50/s, so the
        // last arrival waits about 200 x 20 ms - 200 x 5 ms = 3 s behind its due time.
        let schedule = OpenLoopSchedule(rate: 200, warmup: .zero, seconds: .seconds(1), maxInFlight: 1)
        let run = await schedule.run { _ in
            try? await Task.sleep(for: .milliseconds(20))
            return Arrival.Result()
        }
        let record = run.record
        #expect(record.completed == 200)
        #expect(record.failures == 0)
        let latencyP99 = OpenLoopReport.ms(record.latency, 99)
        let serviceP99 = OpenLoopReport.ms(record.service, 99)
        // A closed loop would report the 20 ms; the open loop reports the wait as well.
        #expect(latencyP99 > 2_000, "p99 from due time \(latencyP99) ms")
        #expect(serviceP99 < 1_000, "p99 from sending \(serviceP99) ms")
        #expect(record.lateStarts >= 150)
        #expect(run.finished - run.end > .seconds(2))
    }

    @Test("arrivals of the warm-up run but are not recorded; failures are counted apart")
    func windowAndFailures() async {
        let calls = Mutex<[Int]>([])
        let schedule = OpenLoopSchedule(rate: 100, warmup: .milliseconds(500), seconds: .seconds(1), maxInFlight: 64)
        #expect(schedule.arrivals == 150)
        let run = await schedule.run { sequence in
            calls.withLock { $0.append(sequence) }
            var result = Arrival.Result()
            if sequence % 10 == 0 { result.outcome = .failed("refused \(sequence)") }
            if sequence % 10 == 1 { result.outcome = .conflict }
            result.holds = 1
            return result
        }
        let record = run.record
        // Every arrival ran once, in due order.
        #expect(calls.withLock { $0.sorted() } == Array(0..<150))
        // The window holds arrivals 50..<150: 10 failures, 10 conflicts, 80 completed.
        #expect(record.completed == 80)
        #expect(record.failures == 10)
        #expect(record.conflicts == 10)
        #expect(record.failuresInWarmup == 5)
        #expect(record.servedHolds == 150)
        #expect(record.latency.totalCount == 80)
        #expect(record.messages.count == 5)
    }

    @Test("at a rate the service keeps up with, latency is the service's own")
    func unloaded() async {
        let schedule = OpenLoopSchedule(rate: 100, warmup: .zero, seconds: .seconds(1), maxInFlight: 64)
        let run = await schedule.run { _ in
            try? await Task.sleep(for: .milliseconds(5))
            return Arrival.Result(steps: [.milliseconds(5)])
        }
        #expect(run.record.completed == 100)
        // Generous: the test machine may be busy; a queue would add seconds, not milliseconds.
        #expect(OpenLoopReport.ms(run.record.latency, 50) < 250)
        #expect(run.record.steps.first?.totalCount == 100)
        let report = OpenLoopReport(
            scenario: "webhooks", label: "0.5", rate: 100, seconds: 1, warmup: 0, maxInFlight: 64, windowStart: 0, windowEnd: 1,
            lastAnswerAfterEnd: 0, driverCPUSeconds: 0.1, primedEvents: 0, cores: 2, record: run.record)
        let json = report.json()
        #expect(json["completed"] as? Int == 100)
        #expect((json["latency_ms"] as? [String: Any])?["count"] as? Int == 100)
        #expect(report.text().contains("open_loop_throughput=100 "))
    }
}
