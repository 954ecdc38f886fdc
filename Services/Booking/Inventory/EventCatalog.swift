import Foundation
import Messaging
import SharedModel
import Synchronization

/// Events with their seats, cached in memory after the first read. Seats and prices never change
/// once an event exists, so a cached event is never stale; unknown ids are not cached (the event
/// may be created a moment later). At most `capacity` events are kept; beyond that the cache
/// starts over, which costs one read per event.
final class EventCatalog: Sendable {
    private let repository: any InventoryRepository
    private let capacity: Int
    private let cache = Mutex<[EventID: SellableEvent]>([:])

    init(repository: any InventoryRepository, capacity: Int = 10_000) {
        self.repository = repository
        self.capacity = capacity
    }

    /// The event, or nil when it does not exist.
    func event(_ id: EventID) async throws -> SellableEvent? {
        if let cached = cache.withLock({ $0[id] }) { return cached }
        guard let event = try await repository.event(id) else { return nil }
        remember(event)
        return event
    }

    /// Stores a new event (with `audit` in the same transaction) and caches it.
    func create(_ event: SellableEvent, audit: AuditRecord? = nil) async throws {
        try await repository.create(event, audit: audit)
        remember(event)
    }

    private func remember(_ event: SellableEvent) {
        cache.withLock { events in
            if events.count >= capacity { events.removeAll(keepingCapacity: true) }
            events[event.id] = event
        }
    }
}
