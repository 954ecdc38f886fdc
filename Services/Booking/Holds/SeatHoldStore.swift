import Foundation
import Logging
import Redis
import SharedModel

/// Seat holds in Redis: short-lived, all-or-nothing, fenced by the hold's id.
///
/// Keys of one event share the hash tag `{event:<id>}`, so every script touches one hash slot and
/// runs unchanged on Redis Cluster:
/// - `booking:{event:E}:seat:<seat>`: the id of the hold that has the seat, expiring with it;
/// - `booking:{event:E}:hold:<hold>`: the hold record (customer, seats, expiry, and the booking
///   once converted), expiring with it;
/// - `booking:{event:E}:unavailable`: a cache of the event's seats in active bookings, rebuilt
///   from Postgres whenever it is missing or incomplete. The empty member marks a complete
///   rebuild; writers that add seats to a set without it only ever add (a rebuild merges), so a
///   seat committed during a rebuild is not lost. The cache expires after ``cacheLifetime``, which
///   bounds any drift (e.g. a release that could not reach Redis).
struct SeatHoldStore: Sendable {
    let redis: RedisClient
    /// How long a rebuilt unavailable-seat cache lives before it is rebuilt again.
    var cacheLifetime: Duration
    /// The seats of the holds placed through this store lately (see ``conversionSeats(_:)``).
    let placedSeats: PlacedHoldSeats

    init(redis: RedisClient, cacheLifetime: Duration = .seconds(600), remembering placedHolds: Int = 65_536) {
        self.redis = redis
        self.cacheLifetime = cacheLifetime
        self.placedSeats = PlacedHoldSeats(capacity: placedHolds)
    }

    /// A hold as stored in Redis.
    struct Hold: Sendable, Hashable {
        let reference: HoldReference
        let customerID: CustomerID
        let seatIDs: [SeatID]
        let expiresAt: Date
        /// Set once the hold was converted into a booking.
        let bookingID: BookingID?
    }

    enum PlaceOutcome: Sendable, Equatable {
        case held
        /// The seats (in request order) that are held by someone else or in an active booking.
        case unavailable([SeatID])
        /// The event's unavailable-seat cache is missing or incomplete: rebuild it, then retry.
        case cacheMissing
    }

    /// Holds every seat of `seats` for `customer` until `expiresAt`, or none of them.
    func place(
        _ reference: HoldReference, seats: [SeatID], customer: CustomerID, ttl: Duration, expiresAt: Date
    ) async throws -> PlaceOutcome {
        let call = placeCall(reference, seats: seats, customer: customer, ttl: ttl, expiresAt: expiresAt)
        return try placeOutcome(try await redis.evaluate(call.script, keys: call.keys, arguments: call.arguments), reference, seats: seats)
    }

    /// The hold script's call for ``place(_:seats:customer:ttl:expiresAt:)``.
    func placeCall(_ reference: HoldReference, seats: [SeatID], customer: CustomerID, ttl: Duration, expiresAt: Date) -> RedisScriptCall {
        var arguments: [RedisArgument] = [
            RedisArgument(reference.holdID.description), RedisArgument(ttl.wholeMilliseconds), RedisArgument(customer.rawValue),
            RedisArgument(Self.milliseconds(expiresAt)), RedisArgument(bytes: Self.seatsJSON(seats)),
        ]
        arguments.reserveCapacity(arguments.count + seats.count)
        for seat in seats { arguments.append(RedisArgument(seat.rawValue)) }
        return RedisScriptCall(Self.placeScript, keys: scriptKeys(reference, seats: seats, withCache: true), arguments: arguments)
    }

    /// What the hold script's `reply` means for the hold `reference` of `seats`.
    func placeOutcome(_ reply: RedisReply, _ reference: HoldReference, seats: [SeatID]) throws -> PlaceOutcome {
        let parts = reply.array?.compactMap { $0.string } ?? []
        switch parts.first {
        case "held":
            placedSeats.remember(reference.holdID, seats: seats)
            return .held
        case "rebuild": return .cacheMissing
        case "taken": return .unavailable(try parts.dropFirst().map { try SeatID(parsing: $0) })
        default: throw UnexpectedHoldReply(reply: reply, expected: "a hold outcome")
        }
    }

    /// A hold record's `seats` field: the seat ids as a JSON array of strings, written directly (a
    /// `JSONEncoder` made and run per hold cost more than the rest of the encoding).
    static func seatsJSON(_ seats: [SeatID]) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "[")]
        bytes.reserveCapacity(2 + seats.count * 8)
        for (index, seat) in seats.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONValue.writeString(seat.rawValue, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
        return bytes
    }

    /// The seat ids of a hold record's `seats` field, however it was escaped (earlier versions wrote
    /// `/` as `\/`); what the direct reader declines goes to `JSONDecoder`.
    static func seats(fromJSON text: String) throws -> [String] {
        if case .array(let elements)? = JSONValue(fastParsing: Data(text.utf8)) {
            let seats = elements.compactMap(\.stringValue)
            if seats.count == elements.count { return seats }
        }
        return try JSONDecoder().decode([String].self, from: Data(text.utf8))
    }

    /// The hold, or nil when it does not exist (never did, expired, or released).
    func hold(_ reference: HoldReference) async throws -> Hold? {
        let reply = try await redis.send("HGETALL", RedisArgument(holdKey(reference)))
        guard let elements = reply.array, !elements.isEmpty else { return nil }
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: elements.count - 1, by: 2) {
            if let name = elements[index].string, let value = elements[index + 1].string { fields[name] = value }
        }
        guard let customer = fields["customer"], let seats = fields["seats"], let expiresAt = fields["expires_at"].flatMap(Int64.init) else {
            throw UnexpectedHoldReply(reply: reply, expected: "a hold record")
        }
        let seatIDs = try Self.seats(fromJSON: seats).map { try SeatID(parsing: $0) }
        return Hold(
            reference: reference, customerID: try CustomerID(parsing: customer), seatIDs: seatIDs,
            expiresAt: Date(timeIntervalSince1970: Double(expiresAt) / 1000), bookingID: try fields["booking"].map { try BookingID(parsing: $0) }
        )
    }

    /// The seats of the hold `reference` names, for its conversion: remembered when this store placed
    /// it (a hold's seats never change and its id is never reused), else read from its record; nil when
    /// there is no record. Whether the hold is still live and whose it is, only Redis answers
    /// (``prepareConversion(_:seats:customer:minimumLife:)``), so the remembered seats save a round trip
    /// and decide nothing.
    func conversionSeats(_ reference: HoldReference) async throws -> [SeatID]? {
        if let seats = placedSeats.seats(of: reference.holdID) { return seats }
        return try await hold(reference)?.seatIDs
    }

    enum ConversionCheck: Sendable, Equatable {
        /// Every seat still carries the hold's id; each key now lives at least `minimumLife` more.
        case live
        /// The hold or one of its seat keys is gone (expired or released).
        case expired
        /// The hold belongs to another customer.
        case notOwner
        /// The hold was already converted into this booking.
        case booked(BookingID)
    }

    /// Checks that the hold `reference` names (of `seats`) can become a booking for `customer` and keeps
    /// its keys alive for at least `minimumLife`, so they cannot expire while the booking is being written.
    func prepareConversion(_ reference: HoldReference, seats: [SeatID], customer: CustomerID, minimumLife: Duration) async throws -> ConversionCheck {
        let reply = try await redis.evaluate(
            Self.prepareScript, keys: scriptKeys(reference, seats: seats, withCache: false),
            arguments: [
                RedisArgument(reference.holdID.description), RedisArgument(customer.rawValue), RedisArgument(minimumLife.wholeMilliseconds),
            ]
        )
        let parts = reply.array?.compactMap { $0.string } ?? []
        switch parts.first {
        case "live": return .live
        case "missing": return .expired
        case "not_owner": return .notOwner
        case "booked" where parts.count == 2: return .booked(try BookingID(parsing: parts[1]))
        default: throw UnexpectedHoldReply(reply: reply, expected: "a conversion check")
        }
    }

    /// After the booking committed, in one round trip: keeps the hold's seat keys (those still carrying
    /// its id) until `keepUntil`, marks the hold as booked and adds the seats to the unavailable-seat
    /// cache; and updates the customer's held-seat reservation of the hold (`reservation`; the customer's
    /// own hash slot). Returns what failed of each, nil when it was done; a connection failure fails both.
    func recordConversion(
        _ reference: HoldReference, seats: [SeatID], bookingID: BookingID, keepUntil: Date,
        reservation: (customer: CustomerID, change: ReservationChange)
    ) async -> (conversion: (any Error)?, reservation: (any Error)?) {
        let conversion = RedisScriptCall(
            Self.convertScript, keys: scriptKeys(reference, seats: seats, withCache: true),
            arguments: [
                RedisArgument(reference.holdID.description), RedisArgument(bookingID.description),
                RedisArgument(Self.milliseconds(keepUntil)), RedisArgument(cacheLifetime.wholeMilliseconds),
            ] + seats.map { RedisArgument($0.rawValue) })
        do {
            let results = try await redis.evaluate([
                conversion, reservationCall(reference.holdID, customer: reservation.customer, reservation.change),
            ])
            func failure(_ result: Result<RedisReply, RedisError>) -> (any Error)? {
                if case .failure(let error) = result { return error }
                return nil
            }
            return (failure(results[0]), failure(results[1]))
        } catch {
            return (error, error)
        }
    }

    enum ReleaseOutcome: Sendable, Equatable {
        case released
        case notFound
        case notOwner
        case booked(BookingID)
    }

    /// Releases a hold's seats if `customer` owns it and it was not converted: compare-and-delete,
    /// so a seat that meanwhile belongs to another hold is left alone.
    func release(_ hold: Hold, customer: CustomerID) async throws -> ReleaseOutcome {
        let reply = try await redis.evaluate(
            Self.releaseScript, keys: scriptKeys(hold.reference, seats: hold.seatIDs, withCache: false),
            arguments: [RedisArgument(hold.reference.holdID.description), RedisArgument(customer.rawValue)]
        )
        let parts = reply.array?.compactMap { $0.string } ?? []
        switch parts.first {
        case "released": return .released
        case "missing": return .notFound
        case "not_owner": return .notOwner
        case "booked" where parts.count == 2: return .booked(try BookingID(parsing: parts[1]))
        default: throw UnexpectedHoldReply(reply: reply, expected: "a release outcome")
        }
    }

    /// After a booking stopped holding its seats (cancelled, expired, refunded) in Postgres: removes
    /// them from the unavailable-seat cache and deletes the seat keys still fenced by its hold.
    func releaseBookedSeats(event: EventID, holdID: HoldID, seats: [SeatID]) async throws {
        let reference = HoldReference(eventID: event, holdID: holdID)
        _ = try await redis.evaluate(
            Self.releaseBookedScript, keys: scriptKeys(reference, seats: seats, withCache: true),
            arguments: [RedisArgument(holdID.description)] + seats.map { RedisArgument($0.rawValue) }
        )
    }

    /// Merges `seats` (read from Postgres) into the event's unavailable-seat cache and marks it complete.
    func rebuildCache(event: EventID, unavailable seats: [SeatID]) async throws {
        _ = try await redis.evaluate(
            Self.rebuildScript, keys: [RedisArgument(unavailableKey(event))],
            arguments: [RedisArgument(cacheLifetime.wholeMilliseconds)] + seats.map { RedisArgument($0.rawValue) }
        )
    }

    /// The seats of `seats` that a live hold has.
    func heldSeats(event: EventID, among seats: [SeatID]) async throws -> Set<SeatID> {
        guard !seats.isEmpty else { return [] }
        var held = Set<SeatID>()
        // MGET in slices keeps each reply moderate for events with many seats.
        for start in stride(from: 0, to: seats.count, by: 1000) {
            let slice = Array(seats[start..<min(start + 1000, seats.count)])
            let reply = try await redis.send([RedisArgument("MGET")] + slice.map { RedisArgument(seatKey(event, $0)) })
            guard let values = reply.array, values.count == slice.count else {
                throw UnexpectedHoldReply(reply: reply, expected: "one value per seat")
            }
            for (seat, value) in zip(slice, values) where !value.isNull { held.insert(seat) }
        }
        return held
    }

    // MARK: Keys

    private func prefix(_ event: EventID) -> String { "booking:{event:\(event)}:" }
    func seatKey(_ event: EventID, _ seat: SeatID) -> String { prefix(event) + "seat:" + seat.rawValue }
    func holdKey(_ reference: HoldReference) -> String { prefix(reference.eventID) + "hold:" + reference.holdID.description }
    func unavailableKey(_ event: EventID) -> String { prefix(event) + "unavailable" }

    /// The keys of a script over one hold, in the order the scripts take them: the event's
    /// unavailable-seat cache (when `withCache`), the hold record, each seat's key. The same keys as
    /// ``unavailableKey(_:)``, ``holdKey(_:)`` and ``seatKey(_:_:)`` (tested), with the event's prefix
    /// rendered once rather than per key (a hold's keys were 1.5% of the service's CPU).
    func scriptKeys(_ reference: HoldReference, seats: [SeatID], withCache: Bool) -> [RedisArgument] {
        let prefix = Array(prefix(reference.eventID).utf8)
        func key(_ kind: String, _ name: String) -> RedisArgument {
            var bytes = prefix
            bytes.reserveCapacity(prefix.count + kind.utf8.count + name.utf8.count)
            bytes.append(contentsOf: kind.utf8)
            bytes.append(contentsOf: name.utf8)
            return RedisArgument(bytes: bytes)
        }
        var keys: [RedisArgument] = []
        keys.reserveCapacity(2 + seats.count)
        if withCache { keys.append(key("unavailable", "")) }
        keys.append(key("hold:", reference.holdID.description))
        for seat in seats { keys.append(key("seat:", seat.rawValue)) }
        return keys
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    // MARK: Scripts

    /// KEYS: unavailable set, hold record, seat keys. ARGV: hold id, ttl ms, customer, expires-at ms,
    /// seats JSON, seat ids (in the order of the seat keys).
    static let placeScript = RedisScript(
        """
        if redis.call('SISMEMBER', KEYS[1], '') == 0 then return {'rebuild'} end
        local taken = {}
        for i = 3, #KEYS do
          local seat = ARGV[i + 3]
          if redis.call('EXISTS', KEYS[i]) == 1 or redis.call('SISMEMBER', KEYS[1], seat) == 1 then taken[#taken + 1] = seat end
        end
        if #taken > 0 then
          table.insert(taken, 1, 'taken')
          return taken
        end
        for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) end
        redis.call('HSET', KEYS[2], 'customer', ARGV[3], 'seats', ARGV[5], 'expires_at', ARGV[4])
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
        return {'held'}
        """)

    /// The start of the scripts that act for a hold's owner (KEYS[1] the hold record, ARGV[2] the
    /// customer): answers `missing`, `not_owner` or `booked <id>` unless the hold is live, the
    /// customer's, and not converted yet.
    static let ownedUnbookedHold = """
        local customer = redis.call('HGET', KEYS[1], 'customer')
        if not customer then return {'missing'} end
        if customer ~= ARGV[2] then return {'not_owner'} end
        local booking = redis.call('HGET', KEYS[1], 'booking')
        if booking then return {'booked', booking} end

        """

    /// KEYS: hold record, seat keys. ARGV: hold id, customer, minimum remaining life ms.
    static let prepareScript = RedisScript(
        ownedUnbookedHold + """
            for i = 2, #KEYS do
              if redis.call('GET', KEYS[i]) ~= ARGV[1] then return {'missing'} end
            end
            local minimum = tonumber(ARGV[3])
            for i = 1, #KEYS do
              if redis.call('PTTL', KEYS[i]) < minimum then redis.call('PEXPIRE', KEYS[i], minimum) end
            end
            return {'live'}
            """)

    /// KEYS: unavailable set, hold record, seat keys. ARGV: hold id, booking id, keep-until ms,
    /// cache lifetime ms, seat ids.
    static let convertScript = RedisScript(
        """
        for i = 3, #KEYS do
          if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('PEXPIREAT', KEYS[i], ARGV[3]) end
          redis.call('SADD', KEYS[1], ARGV[i + 2])
        end
        if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
        if redis.call('EXISTS', KEYS[2]) == 1 then
          redis.call('HSET', KEYS[2], 'booking', ARGV[2])
          redis.call('PEXPIREAT', KEYS[2], ARGV[3])
        end
        return 1
        """)

    /// KEYS: hold record, seat keys. ARGV: hold id, customer.
    static let releaseScript = RedisScript(
        ownedUnbookedHold + """
            for i = 2, #KEYS do
              if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
            end
            redis.call('DEL', KEYS[1])
            return {'released'}
            """)

    /// KEYS: unavailable set, hold record, seat keys. ARGV: hold id, seat ids.
    static let releaseBookedScript = RedisScript(
        """
        for i = 3, #KEYS do
          if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
          redis.call('SREM', KEYS[1], ARGV[i - 1])
        end
        redis.call('DEL', KEYS[2])
        return 1
        """)

    /// KEYS: unavailable set. ARGV: lifetime ms, seat ids.
    static let rebuildScript = RedisScript(
        """
        for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
        redis.call('SADD', KEYS[1], '')
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        return 1
        """)
}

/// A Redis reply a hold script or command cannot have produced; a server fault, not bad input.
struct UnexpectedHoldReply: Error, CustomStringConvertible {
    let reply: RedisReply
    let expected: String
    var description: String { "expected \(expected), got \(reply)" }
}

extension SeatHoldStore {
    /// Releases seats in Redis that a committed transaction released in Postgres. Postgres is the
    /// truth, so a failure here is logged, and the cache is rebuilt from Postgres when found incomplete.
    func releaseAfterCommit(_ release: SeatRelease, logger: Logger, correlationID: String? = nil) async {
        do {
            try await releaseBookedSeats(event: release.eventID, holdID: release.holdID, seats: release.seats)
        } catch {
            var metadata: Logger.Metadata = ["event_id": "\(release.eventID)", "error": "\(error)"]
            if let correlationID { metadata["correlation_id"] = "\(correlationID)" }
            logger.warning("seats released in Postgres but not yet in Redis; the cache repairs from Postgres", metadata: metadata)
        }
    }
}
