import ServiceLifecycle

/// Several services run as one: started together, and stopped together when graceful shutdown
/// begins (each gets the signal at once), where a service group stops its services one after the
/// other. For peers such as one stream consumer per stream, each of which may need up to its
/// blocking read (1 s) to stop.
public struct ConcurrentServices: Service {
    private let services: [any Service]

    public init(_ services: [any Service]) {
        self.services = services
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in services {
                group.addTask { try await service.run() }
            }
            try await group.waitForAll()
        }
    }
}
