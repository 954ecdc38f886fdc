import Testing

@testable import PaymentsWebhook

@Suite("Per-source budget of unverified requests")
struct UnverifiedRequestLimiterTests {
    @Test("a source is admitted until it spent its burst, waits for a token at the refill rate, and others are untouched")
    func burstAndRefill() {
        let limiter = UnverifiedRequestLimiter(limits: .init(burst: 3, refillPerMinute: 120))
        let start = ContinuousClock.now
        for _ in 0..<3 {
            #expect(limiter.admission(for: "a", now: start) == nil)
            limiter.recordFailure(from: "a", now: start)
        }
        let wait = limiter.admission(for: "a", now: start)
        #expect(wait == .milliseconds(500))
        #expect(limiter.admission(for: "b", now: start) == nil)
        #expect(limiter.admission(for: "a", now: start + .milliseconds(250)) == .milliseconds(250))
        #expect(limiter.admission(for: "a", now: start + .milliseconds(500)) == nil)
        limiter.recordFailure(from: "a", now: start + .milliseconds(500))
        #expect(limiter.admission(for: "a", now: start + .milliseconds(500)) != nil)
        // Refills never exceed the burst.
        for _ in 0..<3 { limiter.recordFailure(from: "a", now: start + .seconds(60)) }
        #expect(limiter.admission(for: "a", now: start + .seconds(60)) != nil)
    }

    @Test("tracked sources stay bounded: refilled ones are forgotten first, then the least recently seen")
    func bounded() {
        let limiter = UnverifiedRequestLimiter(limits: .init(burst: 2, refillPerMinute: 60), maximumSources: 100)
        let start = ContinuousClock.now
        for index in 0..<1000 {
            limiter.recordFailure(from: "s\(index)", now: start + .milliseconds(index))
            limiter.recordFailure(from: "s\(index)", now: start + .milliseconds(index))
        }
        #expect(limiter.trackedSources <= 100)
        // The most recent offender is still limited.
        #expect(limiter.admission(for: "s999", now: start + .milliseconds(999)) != nil)
    }
}
