import Testing

@testable import PaymentsWebhook

@Suite("Per-source budget of unverified requests")
struct UnverifiedRequestLimiterTests {
    let a = ClientSource(text: "192.0.2.1")
    let b = ClientSource(text: "192.0.2.2")

    @Test("a source spends its burst, waits for a token at the refill rate, and others are untouched")
    func burstAndRefill() {
        let limiter = UnverifiedRequestLimiter(limits: .init(burst: 3, refillPerMinute: 120))
        let start = ContinuousClock.now
        for _ in 0..<3 {
            #expect(limiter.admission(for: a, now: start) == nil)
            #expect(limiter.spend(from: a, now: start) == nil)
        }
        #expect(limiter.admission(for: a, now: start) == .milliseconds(500))
        #expect(limiter.spend(from: a, now: start) == .milliseconds(500))
        #expect(limiter.admission(for: b, now: start) == nil)
        #expect(limiter.admission(for: a, now: start + .milliseconds(250)) == .milliseconds(250))
        #expect(limiter.admission(for: a, now: start + .milliseconds(500)) == nil)
        #expect(limiter.spend(from: a, now: start + .milliseconds(500)) == nil)
        #expect(limiter.admission(for: a, now: start + .milliseconds(500)) != nil)
        // Refills never exceed the burst.
        for _ in 0..<3 { #expect(limiter.spend(from: a, now: start + .seconds(60)) == nil) }
        #expect(limiter.spend(from: a, now: start + .seconds(60)) != nil)
    }

    @Test("a verified request's token comes back; the last token cannot be taken twice")
    func refund() {
        let limiter = UnverifiedRequestLimiter(limits: .init(burst: 1, refillPerMinute: 1))
        let start = ContinuousClock.now
        for _ in 0..<100 {
            #expect(limiter.spend(from: a, now: start) == nil)
            limiter.refund(to: a, now: start)
        }
        // A full bucket is forgotten: verified traffic occupies no room.
        #expect(limiter.trackedSources == 0)
        #expect(limiter.spend(from: a, now: start) == nil)
        #expect(limiter.spend(from: a, now: start) != nil)
        // A refund never lifts a bucket over its burst.
        limiter.refund(to: a, now: start)
        limiter.refund(to: a, now: start)
        #expect(limiter.spend(from: a, now: start) == nil)
        #expect(limiter.spend(from: a, now: start) != nil)
    }

    @Test("tracked sources stay bounded: the least recently seen is forgotten first, and a forgotten source starts full")
    func bounded() {
        let limiter = UnverifiedRequestLimiter(limits: .init(burst: 2, refillPerMinute: 60), maximumSources: 100)
        let start = ContinuousClock.now
        for index in 0..<1000 {
            #expect(limiter.spend(from: .v4(UInt32(index)), now: start + .milliseconds(index)) == nil)
            #expect(limiter.spend(from: .v4(UInt32(index)), now: start + .milliseconds(index)) == nil)
        }
        #expect(limiter.trackedSources == 100)
        #expect(limiter.sourcesByRecency == (900..<1000).reversed().map { .v4(UInt32($0)) })
        // The most recent offender is still limited; an evicted one is not tracked any more.
        #expect(limiter.admission(for: .v4(999), now: start + .milliseconds(999)) != nil)
        #expect(limiter.admission(for: .v4(0), now: start + .milliseconds(999)) == nil)
        // Seeing a source again makes it the most recent, so the next eviction spares it.
        _ = limiter.admission(for: .v4(900), now: start + .seconds(1))
        _ = limiter.spend(from: .v4(5000), now: start + .seconds(1))
        #expect(limiter.sourcesByRecency.prefix(2) == [.v4(5000), .v4(900)])
        #expect(!limiter.sourcesByRecency.contains(.v4(901)))
    }

    @Test("one IPv6 /64 is one source; IPv4 addresses are each their own")
    func aggregation() {
        let limiter = UnverifiedRequestLimiter(limits: .init(burst: 2, refillPerMinute: 1))
        let start = ContinuousClock.now
        #expect(limiter.spend(from: ClientSource(text: "2001:db8:1:2::1"), now: start) == nil)
        #expect(limiter.spend(from: ClientSource(text: "2001:db8:1:2:ffff:ffff:ffff:ffff"), now: start) == nil)
        #expect(limiter.spend(from: ClientSource(text: "2001:db8:1:2:abcd::9"), now: start) != nil)
        #expect(limiter.spend(from: ClientSource(text: "2001:db8:1:3::1"), now: start) == nil)
        #expect(limiter.spend(from: ClientSource(text: "192.0.2.1"), now: start) == nil)
        #expect(limiter.spend(from: ClientSource(text: "192.0.2.1"), now: start) == nil)
        #expect(limiter.spend(from: ClientSource(text: "192.0.2.2"), now: start) == nil)
        #expect(limiter.trackedSources == 4)
    }
}
