import Foundation

/// Where a component reads the current time. Every service injects one (the relay, the consumers,
/// the saga and its pollers, the purgers and sweepers, the controllers), so tests and simulations
/// move time instead of sleeping, and nothing reads `Date()` inline. Times are UTC instants.
public struct WallClock: Sendable {
    private let read: @Sendable () -> Date

    /// A clock that reads `read` each time it is asked.
    public init(_ read: @escaping @Sendable () -> Date) {
        self.read = read
    }

    /// The current instant.
    public func now() -> Date {
        read()
    }

    /// The system's clock.
    public static let system = WallClock { Date() }

    /// A clock that always answers `instant`.
    public static func fixed(_ instant: Date) -> WallClock {
        WallClock { instant }
    }
}
