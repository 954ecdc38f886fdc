import ServiceLifecycle

/// Keeps a resource alive while the application runs and closes it after graceful shutdown began,
/// e.g. an HTTP client: listed before the services that use it, it stops after them.
public struct ShutdownHook: Service {
    private let close: @Sendable () async throws -> Void

    public init(_ close: @escaping @Sendable () async throws -> Void) {
        self.close = close
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await close()
    }
}
