import Crypto
import Foundation
import Logging
import ServiceKit
import SharedModel

/// Booking a live hold, and cancelling a booking: the flows between the booking routes and the stores,
/// which span Redis (the hold) and Postgres (the booking, its saga and its idempotency key).
struct BookingService<Repository: BookingRepository>: Sendable {
    let repository: Repository
    let catalog: EventCatalog
    let holds: SeatHoldStore
    let paymentWindow: Duration
    let paymentGrace: Duration
    var clock: WallClock = .system
    /// How long an idempotency key is remembered.
    var idempotencyKeyLifetime: Duration = .seconds(24 * 3600)
    /// The least time a hold's keys must still live when its conversion starts.
    var conversionMargin: Duration = .seconds(60)

    /// The idempotency scope of booking creation.
    static var scope: String { "POST /v1/bookings" }

    // MARK: Create

    /// Why a hold could not become a booking (each a 4xx answer, remembered under the key).
    enum Rejection: Sendable, Equatable {
        /// The token names no hold this service issued, or its event is gone.
        case unknownHold
        case holdExpired
        case holdNotOwned
        /// The hold already became a booking (its id when Redis still knows it).
        case holdBooked(BookingID?)
        /// Another booking took some of the seats first (the database's guard).
        case seatsTaken([SeatID])
        /// The event was cancelled (the database's guard).
        case eventCancelled
    }

    /// What a request with an idempotency key is answered.
    enum Answer: Sendable, Equatable {
        /// Stored now, under the key: the answer to this request.
        case fresh(StoredResponse)
        /// Stored earlier by the same request (same key, same request): answered again.
        case replayed(StoredResponse)
        /// The key was used with a different request.
        case keyReused
    }

    enum CreateOutcome: Sendable {
        case answered(Answer)
        /// The hold could not become a booking: the caller remembers its 4xx answer under the key
        /// (``remember(status:body:claim:)``).
        case rejected(Rejection, IdempotencyClaim)
    }

    /// The claim of `key` by `client` for converting `holdToken` for `customer`, at `now`.
    func claim(key: String, client: String, holdToken: String, customer: CustomerID, at now: Date) -> IdempotencyClaim {
        IdempotencyClaim(
            client: client, scope: Self.scope, key: key,
            requestHash: Array(SHA256.hash(data: Array("\(holdToken)\u{0}\(customer.rawValue)".utf8))),
            expiresAt: now.adding(idempotencyKeyLifetime), now: now)
    }

    /// Turns the live hold `holdToken` names into a booking awaiting payment (or confirmed at once when
    /// it costs nothing), storing its 201 response under the key in the same transaction. No lookup
    /// happens before the work: a repeated request finds its stored response inside the conversion's
    /// transaction (under the key's lock), or - when the hold already became its booking - through a
    /// rejection, which the caller remembers under the key (``remember(status:body:claim:)``).
    func create(
        holdToken: String, customer: CustomerID, key: String, client: String, correlationID: String, logger: Logger
    ) async throws -> CreateOutcome {
        let claim = claim(key: key, client: client, holdToken: holdToken, customer: customer, at: clock.now())
        guard let reference = HoldReference(token: holdToken), let event = try await catalog.event(reference.eventID) else {
            return .rejected(.unknownHold, claim)
        }
        guard let seatIDs = try await holds.conversionSeats(reference) else { return .rejected(.holdExpired, claim) }
        switch try await holds.prepareConversion(reference, seats: seatIDs, customer: customer, minimumLife: conversionMargin) {
        case .live: break
        case .expired: return .rejected(.holdExpired, claim)
        case .notOwner: return .rejected(.holdNotOwned, claim)
        case .booked(let booking): return .rejected(.holdBooked(booking), claim)
        }
        let createdAt = claim.now
        let paymentDueAt = createdAt.adding(paymentWindow)
        let deadline = paymentDueAt.adding(paymentGrace)
        let seats = seatIDs.sorted()
        let new = NewBooking(
            id: BookingID(), event: event, customerID: customer, holdID: reference.holdID, seatIDs: seats, amount: try event.price(of: seats),
            createdAt: createdAt, paymentDueAt: paymentDueAt, deadline: deadline, correlationID: correlationID, clientID: client)
        let booking = new.booking
        let response = StoredResponse(
            status: 201, body: try JSONValueEncoder.jsonBytes(BookingBody(booking: booking)), requestHash: claim.requestHash)
        switch try await repository.create(new, response: response, claim: claim) {
        case .replayed(let stored):
            return .answered(Self.answer(stored, claim: claim, isNew: false))
        case .seatsTaken(let taken):
            return .rejected(.seatsTaken(taken), claim)
        case .holdBooked:
            return .rejected(.holdBooked(nil), claim)
        case .eventCancelled:
            return .rejected(.eventCancelled, claim)
        case .created:
            // Postgres is the truth from here on: if Redis cannot record the conversion, the booking
            // stands and its seats stay unavailable through the database (the cache is rebuilt from it).
            // The hold (the event's keys) and the customer's held-seat reservation (the customer's) are
            // updated in one round trip: neither depends on the other. A booking awaiting payment keeps
            // counting its seats until its deadline (or until it leaves `pending_payment` earlier); a
            // free booking, confirmed at once, stops counting now. If the reservation is not updated, it
            // ends with the hold's TTL.
            let change: SeatHoldStore.ReservationChange = booking.status == .pendingPayment ? .extend(until: deadline, now: clock.now()) : .release
            let failed = await holds.recordConversion(
                reference, seats: seatIDs, bookingID: booking.id, keepUntil: deadline, reservation: (customer, change))
            if let error = failed.conversion {
                logger.warning(
                    "booking created but its hold could not be extended in Redis", metadata: ["booking_id": "\(booking.id)", "error": "\(error)"])
            }
            if let error = failed.reservation {
                logger.warning(
                    "booking created but the customer's held-seat reservation was not updated",
                    metadata: ["booking_id": "\(booking.id)", "error": "\(error)"])
            }
            logger.info("booking created", metadata: ["booking_id": "\(booking.id)", "seats": "\(seats.count)"])
            return .answered(.fresh(response))
        }
    }

    /// Remembers a 4xx answer under the key (4xx outcomes are remembered like successes; 5xx are not,
    /// the client retries), unless the key already has one: then that is the answer.
    func remember(status: Int, body: [UInt8], claim: IdempotencyClaim) async throws -> Answer {
        let stored = try await repository.remember(StoredResponse(status: status, body: body, requestHash: claim.requestHash), claim: claim)
        return Self.answer(stored.response, claim: claim, isNew: stored.isNew)
    }

    private static func answer(_ stored: StoredResponse, claim: IdempotencyClaim, isNew: Bool) -> Answer {
        guard stored.requestHash == claim.requestHash else { return .keyReused }
        return isNew ? .fresh(stored) : .replayed(stored)
    }

    // MARK: Cancel

    /// Cancels booking `id` (see ``CancelOutcome``) for `customer` (nil: the admin, who may cancel any)
    /// as seen by `client` (nil: the admin); seats released in Postgres leave Redis afterwards.
    func cancel(
        _ id: BookingID, reason: CancellationReason, customer: CustomerID?, client: String?, correlationID: String, logger: Logger
    ) async throws -> CancelOutcome {
        let outcome = try await repository.cancel(
            id, reason: reason, customer: customer, client: client, correlationID: correlationID, at: clock.now())
        if case .cancelled(let booking, let released) = outcome {
            if let released { await holds.releaseAfterCommit(released, logger: logger, correlationID: correlationID) }
            await holds.releaseReservationAfterCommit(HeldSeatsReservation(customerID: booking.customerID, holdID: booking.holdID), logger: logger)
            logger.info("booking cancelled", metadata: ["booking_id": "\(booking.id)"])
        }
        return outcome
    }
}
