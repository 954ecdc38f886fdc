import Foundation

extension Duration {
    /// The duration in seconds, as a `TimeInterval` (what `Date` arithmetic takes).
    public var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The duration in whole nanoseconds (truncated toward zero), saturating at `Int64`'s bounds.
    public var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, sumOverflow) = product.addingReportingOverflow(attoseconds / 1_000_000_000)
        if sumOverflow { return seconds < 0 ? .min : .max }
        return sum
    }

    /// The duration in whole milliseconds (truncated toward zero), saturating: what Redis' `PX` and
    /// `PEXPIRE`, NIO's `TimeAmount` and JSON settings in milliseconds take.
    public var wholeMilliseconds: Int64 {
        wholeNanoseconds / 1_000_000
    }

    /// The duration in whole seconds, rounded up (at least `minimum`): for settings that only take
    /// seconds (libpq's timeouts, `Retry-After`), so a sub-second duration never becomes zero.
    public func wholeSecondsRoundedUp(minimum: Int64 = 0) -> Int64 {
        let (seconds, attoseconds) = components
        return Swift.max(minimum, attoseconds > 0 ? seconds + 1 : seconds)
    }

    /// The duration of a `TimeInterval` (seconds), to the nanosecond.
    public init(timeInterval: TimeInterval) {
        self = .nanoseconds(Int64((timeInterval * 1e9).rounded()))
    }
}

extension Date {
    /// This instant moved by `duration` (earlier when it is negative).
    public func adding(_ duration: Duration) -> Date {
        addingTimeInterval(duration.timeInterval)
    }

    /// This instant moved back by `duration`.
    public func subtracting(_ duration: Duration) -> Date {
        addingTimeInterval(-duration.timeInterval)
    }
}
