import Testing

@testable import PaymentsWebhook

@Suite("Per-source budget of unverified requests")
struct UnverifiedRequestLimiterTests {
    @Test("a source spends its burst, waits for a token at the refill rate, and others are untouched")
    func burstAndRefill() {
        let limiter = UnverifiedRequestLimiter(limits: .init(burst: 3, refillPerMinute: 120))
        let start = ContinuousClock.now
        for _ in 0..<3 {
            #expect(limiter.admission(for: "a", now: start) == nil)
            #expect(limiter.spend(from: "a", now: start) == nil)
        }
        #expect(limiter.admission(for: "a", now: start) == .milliseconds(500))
        #expect(limiter.spend(from: "a", now: start) == .milliseconds(500))
        #expect(limiter.admission(for: "b", now: start) == nil)
        #expect(limiter.admission(for: "a", now: start + .milliseconds(250)) == .milliseconds(250))
        #expect(limiter.admission(for: "a", now: start + .milliseconds(500)) == nil)
        #expect(limiter.spend(from: "a", now: start + .milliseconds(500)) == nil)
        #expect(limiter.admission(for: "a", now: start + .milliseconds(500)) != nil)
        // Refills never exceed the burst.
        for _ in 0..<3 { #expect(limiter.spend(from: "a", now: start + .seconds(60)) == nil) }
        #expect(limiter.spend(from: "a", now: start + .seconds(60)) != nil)
    }

    @Test("a verified request's token comes back; the last token cannot be taken twice")
    func refund() {
        let limiter = UnverifiedRequestLimiter(limits: .init(burst: 1, refillPerMinute: 1))
        let start = ContinuousClock.now
        for _ in 0..<100 {
            #expect(limiter.spend(from: "a", now: start) == nil)
            limiter.refund(to: "a", now: start)
        }
        // A full bucket is forgotten: verified traffic occupies no room.
        #expect(limiter.trackedSources == 0)
        #expect(limiter.spend(from: "a", now: start) == nil)
        #expect(limiter.spend(from: "a", now: start) != nil)
        // A refund never lifts a bucket over its burst.
        limiter.refund(to: "a", now: start)
        limiter.refund(to: "a", now: start)
        #expect(limiter.spend(from: "a", now: start) == nil)
        #expect(limiter.spend(from: "a", now: start) != nil)
    }

    @Test("tracked sources stay bounded: refilled ones are forgotten first, then the least recently seen")
    func bounded() {
        let limiter = UnverifiedRequestLimiter(limits: .init(burst: 2, refillPerMinute: 60), maximumSources: 100)
        let start = ContinuousClock.now
        for index in 0..<1000 {
            _ = limiter.spend(from: "s\(index)", now: start + .milliseconds(index))
            _ = limiter.spend(from: "s\(index)", now: start + .milliseconds(index))
        }
        #expect(limiter.trackedSources <= 100)
        // The most recent offender is still limited.
        #expect(limiter.admission(for: "s999", now: start + .milliseconds(999)) != nil)
    }
}
