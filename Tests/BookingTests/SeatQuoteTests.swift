import Foundation
import SharedModel
import Testing

@testable import Booking

@Suite("A hold's seats: duplicates, unknown seats and their total, each looked up once")
struct SeatQuoteTests {
    static func event(_ seats: [(String, Int64)]) throws -> SellableEvent {
        SellableEvent(
            id: EventID(), name: "Gig", hostID: try HostID(parsing: "h"), startsAt: Date(timeIntervalSince1970: 1_900_000_000),
            endsAt: Date(timeIntervalSince1970: 1_900_003_600), timeZone: TimeZone(identifier: "UTC") ?? .current, timeZoneName: "UTC",
            currency: try Currency("EUR"), createdAt: Date(), seats: try seats.map { .init(id: try SeatID(parsing: $0.0), price: $0.1) })
    }

    static func seats(_ names: [String]) throws -> [SeatID] {
        try names.map { try SeatID(parsing: $0) }
    }

    @Test("quote: the total, the unknown seats in request order (also when the known ones overflow), or an overflow")
    func quote() throws {
        let event = try Self.event([("A1", 1_500), ("A2", 0), ("A3", 2_250), ("MAX", .max), ("ONE", 1)])
        let eur = try Currency("EUR")
        #expect(event.quote(try Self.seats(["A1", "A2", "A3"])) == .total(Money(amount: 3_750, currency: eur)))
        #expect(event.quote(try Self.seats(["A2"])) == .total(Money(amount: 0, currency: eur)))
        #expect(event.quote(try Self.seats(["B9", "A1", "A0", "B9"])) == .unknownSeats(try Self.seats(["B9", "A0", "B9"])))
        #expect(event.quote(try Self.seats(["MAX"])) == .total(Money(amount: .max, currency: eur)))
        #expect(event.quote(try Self.seats(["MAX", "ONE"])) == .overflow)
        #expect(event.quote(try Self.seats(["MAX", "ONE", "Z1"])) == .unknownSeats(try Self.seats(["Z1"])))
    }

    @Test("seats: duplicates are named once each in first-seen order, for a hold's few seats and an event's many")
    func duplicates() throws {
        #expect(try Validation.seats(["A1", "A2", "A3"], maximum: 10) == Self.seats(["A1", "A2", "A3"]))
        let few = ["A1", "A2", "A1", "A3", "A2", "A1"]
        let many = (1...40).map { "S\($0)" } + ["S7", "S3", "S7", "S40"]
        for (texts, duplicated) in [(few, ["A1", "A2"]), (many, ["S7", "S3", "S40"])] {
            do {
                _ = try Validation.seats(texts, maximum: 100)
                Issue.record("\(texts) was accepted")
            } catch {
                #expect(error.status == .unprocessableContent)
                #expect(error.body.error.details?["seat_ids"] == .array(duplicated.map { .string($0) }), "\(texts)")
            }
        }
        #expect(try Validation.seats(many.dropLast(4).map { $0 }, maximum: 100).count == 40)
    }
}
