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
    /// The per-customer abuse limits (nil: none, e.g. in tests of the hold script alone).
    var limits: CustomerHoldLimits?
    var metrics: HoldLimitMetrics?
    /// Cancelled events refuse holds (nil: not checked, e.g. in tests of the hold script alone).
    var cancelledEvents: CancelledEvents?

    enum PlaceOutcome: Sendable, Equatable {
        case held(HoldReference, expiresAt: Date)
        /// These seats are held or booked by someone else.
        case unavailable([SeatID])
        /// The event has started; its seats can no longer be held.
        case salesClosed
        /// The event was cancelled.
        case eventCancelled
        /// The cache could not be rebuilt; the request may be retried.
        case cacheUnavailable
        /// The customer made too many hold attempts; one more is allowed after `retryAfter`.
        case rateLimited(retryAfter: Duration, limit: RateLimit)
        /// The customer already holds `held` seats (holds and bookings awaiting payment); `requested`
        /// more would exceed `limit`.
        case limitReached(limit: Int, held: Int, requested: Int)
    }

    /// Holds `seats` of `event` for `customer` for the hold's time to live.
    func place(_ seats: [SeatID], of event: SellableEvent, for customer: CustomerID, logger: Logger) async throws -> PlaceOutcome {
        let start = clock.now()
        guard start < event.startsAt else { return .salesClosed }
        if let cancelledEvents, try await cancelledEvents.isCancelled(event.id) { return .eventCancelled }
        let reference = HoldReference(eventID: event.id)
        let expiresAt = start.adding(holdTTL)
        guard let limits else { return try await hold(seats, reference: reference, of: event, for: customer, expiresAt: expiresAt, logger: logger) }
        // Reserve in the customer's ledger first (its own hash slot), then hold in the event's (sent
        // by the Redis connection as soon as the reservation is answered); a refused or failed hold
        // gives its reservation back.
        let (admission, placement) = try await holds.admitAndPlace(
            reference, seats: seats, customer: customer, ttl: holdTTL, expiresAt: expiresAt, limits: limits, now: start)
        switch admission {
        case .reserved:
            break
        case .rateLimited(let wait):
            metrics?.holdAttempts.increment()
            return .rateLimited(retryAfter: wait, limit: limits.attempts)
        case .limitReached(let held):
            metrics?.heldSeats.increment()
            return .limitReached(limit: limits.maximumHeldSeats, held: held, requested: seats.count)
        }
        let outcome: PlaceOutcome
        do {
            outcome = try await hold(
                seats, reference: reference, of: event, for: customer, expiresAt: expiresAt, placed: try placement?.get(), logger: logger)
        } catch {
            await giveBack(reference.holdID, customer: customer, logger: logger)
            throw error
        }
        if case .held = outcome { return outcome }
        await giveBack(reference.holdID, customer: customer, logger: logger)
        return outcome
    }

    /// A refused hold's reservation; if Redis fails here it expires with the hold's TTL.
    private func giveBack(_ holdID: HoldID, customer: CustomerID, logger: Logger) async {
        do {
            try await holds.releaseReservation(holdID, customer: customer)
        } catch {
            logger.warning(
                "could not give back a refused hold's seat reservation; it expires with the hold's TTL",
                metadata: ["customer_id": "\(customer)", "error": "\(error)"])
        }
    }

    /// Holds the seats, rebuilding the event's cache when it is missing; `placed` is the outcome of a
    /// first try already made.
    private func hold(
        _ seats: [SeatID], reference: HoldReference, of event: SellableEvent, for customer: CustomerID, expiresAt: Date,
        placed: SeatHoldStore.PlaceOutcome? = nil, logger: Logger
    ) async throws -> PlaceOutcome {
        var placed = placed
        for _ in 0..<rebuildAttempts {
            let outcome: SeatHoldStore.PlaceOutcome
            if let first = placed {
                outcome = first
                placed = nil
            } else {
                outcome = try await holds.place(reference, seats: seats, customer: customer, ttl: holdTTL, expiresAt: expiresAt)
            }
            switch outcome {
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
    func release(_ reference: HoldReference, customer: CustomerID, logger: Logger) async throws -> SeatHoldStore.ReleaseOutcome {
        guard let hold = try await holds.hold(reference) else { return .notFound }
        let outcome = try await holds.release(hold, customer: customer)
        if outcome == .released {
            do {
                try await holds.releaseReservation(reference.holdID, customer: customer)
            } catch {
                // The seats are free; the ledger's entry expires with the hold's TTL.
                logger.warning("hold released but not its seat reservation", metadata: ["customer_id": "\(customer)", "error": "\(error)"])
            }
        }
        return outcome
    }
}
