import Foundation
import Logging
import SharedModel

/// Holding and releasing seats: the flow between the hold routes and the stores. Redis holds all the
/// seats or none; when its unavailable-seat cache is missing or incomplete, the cache is rebuilt from
/// the active bookings in Postgres before any hold is granted, so a seat in an active booking stays
/// unavailable even when Redis lost its keys.
struct HoldService: Sendable {
    let inventory: any InventoryRepository
    let holds: SeatHoldStore
    let holdTTL: Duration
    var clock: WallClock = .system
    /// How often the cache is rebuilt for one request before it gives up.
    var rebuildAttempts = 3

    enum PlaceOutcome: Sendable, Equatable {
        case held(HoldReference, expiresAt: Date)
        /// These seats are held or booked by someone else.
        case unavailable([SeatID])
        /// The event has started; its seats can no longer be held.
        case salesClosed
        /// The cache could not be rebuilt; the request may be retried.
        case cacheUnavailable
    }

    /// Holds `seats` of `event` for `customer` for the hold's time to live.
    func place(_ seats: [SeatID], of event: SellableEvent, for customer: CustomerID, logger: Logger) async throws -> PlaceOutcome {
        let start = clock.now()
        guard start < event.startsAt else { return .salesClosed }
        let reference = HoldReference(eventID: event.id)
        let expiresAt = start.adding(holdTTL)
        for _ in 0..<rebuildAttempts {
            switch try await holds.place(reference, seats: seats, customer: customer, ttl: holdTTL, expiresAt: expiresAt) {
            case .held:
                return .held(reference, expiresAt: expiresAt)
            case .unavailable(let taken):
                return .unavailable(taken)
            case .cacheMissing:
                let booked = try await inventory.activeBookingSeats(of: event.id)
                try await holds.rebuildCache(event: event.id, unavailable: Array(booked.keys))
                logger.info("rebuilt unavailable-seat cache", metadata: ["event_id": "\(event.id)", "seats": "\(booked.count)"])
            }
        }
        return .cacheUnavailable
    }

    /// Releases the hold `reference` names, when `customer` owns it (compare-and-delete).
    func release(_ reference: HoldReference, customer: CustomerID) async throws -> SeatHoldStore.ReleaseOutcome {
        guard let hold = try await holds.hold(reference) else { return .notFound }
        return try await holds.release(hold, customer: customer)
    }
}
