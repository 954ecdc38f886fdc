import Foundation
import SharedModel

/// A sellable event (a concert, a class) with its seats. Seats and prices never change once the
/// event exists, which is what lets ``EventCatalog`` cache events without invalidation.
struct SellableEvent: Sendable, Hashable {
    let id: EventID
    let name: String
    let hostID: HostID
    /// UTC instants; rendered on the wire in UTC and in ``timeZone``.
    let startsAt: Date
    let endsAt: Date
    /// The zone the event takes place in, for local times.
    let timeZone: TimeZone
    /// Its IANA name as the host gave it, e.g. `America/New_York` or `UTC`.
    let timeZoneName: String
    let currency: Currency
    let createdAt: Date
    /// The seats in the order the host listed them.
    let seats: [Seat]
    /// Price of each seat, in minor units of ``currency``.
    let prices: [SeatID: Int64]

    struct Seat: Sendable, Hashable {
        let id: SeatID
        let price: Int64
    }

    init(
        id: EventID, name: String, hostID: HostID, startsAt: Date, endsAt: Date, timeZone: TimeZone, timeZoneName: String, currency: Currency,
        createdAt: Date, seats: [Seat]
    ) {
        self.id = id
        self.name = name
        self.hostID = hostID
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.timeZone = timeZone
        self.timeZoneName = timeZoneName
        self.currency = currency
        self.createdAt = createdAt
        self.seats = seats
        self.prices = Dictionary(seats.map { ($0.id, $0.price) }, uniquingKeysWith: { first, _ in first })
    }

    /// What a request for seats comes to (``quote(_:)``).
    enum Quote: Equatable {
        /// Every seat is the event's; their total price.
        case total(Money)
        /// The seats the event does not have, in request order.
        case unknownSeats([SeatID])
        /// Every seat is the event's, and their prices add up past what ``Money`` holds.
        case overflow
    }

    /// The total price of `requested`, or the seats of it this event does not have: one price lookup
    /// per seat (the hold route looked each seat up twice, for the unknown seats and the total).
    func quote(_ requested: [SeatID]) -> Quote {
        var total = Money.zero(currency)
        var unknown: [SeatID] = []
        var overflowed = false
        for seat in requested {
            guard let price = prices[seat] else {
                unknown.append(seat)
                continue
            }
            guard !overflowed else { continue }
            do {
                total = try total + Money(amount: price, currency: currency)
            } catch {
                overflowed = true
            }
        }
        if !unknown.isEmpty { return .unknownSeats(unknown) }
        return overflowed ? .overflow : .total(total)
    }

    /// The total price of `seats` (all of which must be the event's).
    func price(of seats: [SeatID]) throws(MoneyError) -> Money {
        var total = Money.zero(currency)
        for seat in seats {
            total = try total + Money(amount: prices[seat] ?? 0, currency: currency)
        }
        return total
    }
}

/// What a seat is right now, derived from bookings in Postgres and holds in Redis (never a counter).
enum SeatState: String, Sendable, Codable {
    /// Neither held nor in an active booking.
    case available
    /// In a live Redis hold, or in a booking that awaits payment (or is being refunded).
    case held
    /// In a confirmed booking.
    case sold
}
