import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// The first step of graceful shutdown (`SHUTDOWN_DRAIN_DELAY`): `/readyz` answers 503
/// `shutting_down` at once, and the HTTP server keeps serving every route for the delay, so a load
/// balancer that polls `/readyz` takes the instance out of rotation before it stops accepting
/// connections. Then the application stops as before: the server lets in-flight requests finish,
/// consumers and pollers stop, the pools close.
///
/// As a service of a group it must come after the HTTP application: a group stops its services from
/// the last to the first, each once the one after it has finished.
public final class ShutdownDrain: Service {
    /// How long every route is still served after graceful shutdown began.
    public let delay: Duration
    private let logger: Logger
    private let draining = Atomic<Bool>(false)

    public init(delay: Duration, logger: Logger) {
        self.delay = delay
        self.logger = logger
    }

    /// True once graceful shutdown began: `/readyz` answers 503 from then on.
    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the process stops without a drain
        }
        draining.store(true, ordering: .relaxed)
        guard delay > .zero else { return }
        logger.info(
            "shutting down: /readyz answers 503 while every route is still served for SHUTDOWN_DRAIN_DELAY",
            metadata: ["delay": "\(delay)"])
        // A cancellation (the group forced to stop) ends the pause early.
        try? await Task.sleep(for: delay)
    }
}

/// A service's HTTP application and its ``ShutdownDrain``: on SIGTERM the drain runs its pause
/// first, then the application stops.
public struct DrainingApplication<Application: ApplicationProtocol>: Service {
    public let application: Application
    public let drain: ShutdownDrain

    public init(application: Application, drain: ShutdownDrain) {
        self.application = application
        self.drain = drain
    }

    public func run() async throws {
        // A group of its own, so the order holds inside whatever group runs this one: the drain is
        // listed last, so it is stopped (and waited for) before the application.
        let group = ServiceGroup(configuration: .init(services: [application, drain], logger: application.logger))
        try await group.run()
    }
}
