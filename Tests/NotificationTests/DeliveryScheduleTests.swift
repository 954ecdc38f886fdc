import Foundation
import Testing

@testable import Notification

@Suite("Delivery schedule: Standard Webhooks delays, jitter, Retry-After, 410, disabling")
struct DeliveryScheduleTests {
    let schedule = DeliverySchedule(disableAfter: .seconds(5 * 86_400))
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("after attempts 1-9 the waits are 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; the 10th failure is final")
    func delays() {
        let expected: [TimeInterval] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400]
        for (index, seconds) in expected.enumerated() {
            let decision = schedule.decide(.refused(status: 500, retryAfter: nil), attempt: index + 1, failingSince: now, now: now, random: 0)
            #expect(decision.next == .retry(at: now.addingTimeInterval(seconds)), "after attempt \(index + 1)")
        }
        #expect(schedule.maximumAttempts == 10)
        #expect(schedule.decide(.unreachable(error: "x"), attempt: 10, failingSince: now, now: now, random: 0).next == .failed)
    }

    @Test("jitter stays within +-20%")
    func jitter() {
        for random in [-1.0, -0.5, 0.3, 1.0, 7.0, -9.0] {
            let decision = schedule.decide(.refused(status: 502, retryAfter: nil), attempt: 2, failingSince: now, now: now, random: random)
            guard case .retry(let at) = decision.next else {
                Issue.record("no retry")
                continue
            }
            let wait = at.timeIntervalSince(now)
            #expect(wait >= 240 - 0.001 && wait <= 360 + 0.001, "random \(random): \(wait)")
        }
    }

    @Test("Retry-After of a 429 or 503 delays the next attempt at least that much, at most 24 h")
    func retryAfter() {
        let long = schedule.decide(.refused(status: 429, retryAfter: .seconds(600)), attempt: 1, failingSince: nil, now: now, random: 0)
        #expect(long.next == .retry(at: now.addingTimeInterval(600)))
        let short = schedule.decide(.refused(status: 503, retryAfter: .seconds(2)), attempt: 1, failingSince: nil, now: now, random: -1)
        #expect(short.next == .retry(at: now.addingTimeInterval(4)))
        let capped = schedule.decide(.refused(status: 429, retryAfter: .seconds(10 * 86_400)), attempt: 1, failingSince: nil, now: now, random: 0)
        #expect(capped.next == .retry(at: now.addingTimeInterval(86_400)))
    }

    @Test("2xx succeeds and heals the endpoint; a failure marks it failing since its first failure")
    func health() {
        #expect(
            schedule.decide(.delivered(status: 204), attempt: 3, failingSince: now, now: now, random: 0)
                == .init(next: .succeeded, endpoint: .healthy))
        let first = schedule.decide(.unreachable(error: "refused"), attempt: 1, failingSince: nil, now: now, random: 0)
        #expect(first.endpoint == .failing(since: now))
        let earlier = now.addingTimeInterval(-3_600)
        #expect(
            schedule.decide(.unreachable(error: "refused"), attempt: 2, failingSince: earlier, now: now, random: 0).endpoint
                == .failing(since: earlier))
    }

    @Test("410 disables the endpoint at once; failing for NOTIFICATION_DISABLE_AFTER disables it too")
    func disabling() {
        let gone = schedule.decide(.refused(status: 410, retryAfter: nil), attempt: 1, failingSince: nil, now: now, random: 0)
        #expect(gone.endpoint == .disable(reason: "the endpoint answered 410 Gone", failingSince: now))
        let since = now.addingTimeInterval(-5 * 86_400)
        let tired = schedule.decide(.refused(status: 500, retryAfter: nil), attempt: 4, failingSince: since, now: now, random: 0)
        #expect(tired.endpoint == .disable(reason: "no successful delivery for 5 days (NOTIFICATION_DISABLE_AFTER)", failingSince: since))
        let almost = schedule.decide(
            .refused(status: 500, retryAfter: nil), attempt: 4, failingSince: since.addingTimeInterval(1), now: now, random: 0)
        #expect(almost.endpoint == .failing(since: since.addingTimeInterval(1)))
    }
}
