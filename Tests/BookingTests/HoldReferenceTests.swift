import Foundation
import SharedModel
import Testing

@testable import Booking

@Suite("Hold references and booking cursors")
struct HoldReferenceTests {
    @Test("A hold token round-trips and names its event; anything else is refused")
    func tokenRoundTrip() throws {
        let reference = HoldReference(eventID: EventID())
        #expect(reference.token.count == 43)
        let parsed = try #require(HoldReference(token: reference.token))
        #expect(parsed == reference)
        #expect(HoldReference(token: "") == nil)
        #expect(HoldReference(token: String(reference.token.dropLast())) == nil)
        #expect(HoldReference(token: reference.token + "A") == nil)
        #expect(HoldReference(token: String(reference.token.dropLast()) + "=") == nil)
        #expect(HoldReference(token: reference.holdID.description) == nil)
    }

    @Test("a hold record's seats: written directly, read back whatever the escaping, as JSONEncoder and JSONDecoder read and wrote them")
    func holdRecordSeats() throws {
        let seats = try ["A1", "row/7", "é-12", #"B "3" \ 4"#, "Ω/Ω"].map { try SeatID(parsing: $0) }
        let written = String(decoding: SeatHoldStore.seatsJSON(seats), as: UTF8.self)
        #expect(try SeatHoldStore.seats(fromJSON: written) == seats.map(\.rawValue))
        #expect(try JSONDecoder().decode([String].self, from: Data(written.utf8)) == seats.map(\.rawValue))
        // Records written by earlier versions (JSONEncoder's defaults: `/` escaped as `\/`).
        let earlier = String(decoding: try JSONEncoder().encode(seats.map(\.rawValue)), as: UTF8.self)
        #expect(earlier.contains(#"\/"#))
        #expect(earlier != written)
        #expect(try SeatHoldStore.seats(fromJSON: earlier) == seats.map(\.rawValue))
        #expect(SeatHoldStore.seatsJSON([]) == Array("[]".utf8))
        #expect(try SeatHoldStore.seats(fromJSON: "[]") == [])
        #expect(throws: (any Error).self) { try SeatHoldStore.seats(fromJSON: #"["A1", 2]"#) }
        #expect(throws: (any Error).self) { try SeatHoldStore.seats(fromJSON: "[") }
    }

    @Test("a hold's response body, written directly, is the general encoder's bytes, escapes and all")
    func holdBodyBytes() throws {
        let seatSets = try [["A1"], ["row/7", "é-12", #"B "3" \ 4"#, "Ω/Ω"], []].map { try $0.map { try SeatID(parsing: $0) } }
        for (seats, customer) in zip(seatSets, ["cus_1", #"c "quoted" / \ é"#, "x"]) {
            let body = HoldController.HoldBody(
                holdID: HoldReference(eventID: EventID()).token, eventID: EventID(), customerID: try CustomerID(parsing: customer),
                seatIDs: seats, expiresAt: RFC3339.string(from: Date(timeIntervalSince1970: 1_796_000_000.123)))
            let direct = body.jsonBytes
            #expect(direct == (try JSONValueEncoder.jsonBytes(body)), "\(String(decoding: direct, as: UTF8.self))")
            let read = try #require(try JSONSerialization.jsonObject(with: Data(direct)) as? [String: Any])
            #expect(read["seat_ids"] as? [String] == seats.map(\.rawValue))
            #expect(read["customer_id"] as? String == customer)
        }
    }

    @Test("Base64URL matches Foundation's base64 with the URL alphabet and no padding, and decodes only canonical text")
    func base64URL() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let encoded = Base64URL.encode(bytes)
            #expect(encoded == expected, "\(length) bytes")
            #expect(Base64URL.decode(encoded) == bytes, "\(length) bytes")
        }
        #expect(Base64URL.decode("") == [])
        #expect(Base64URL.decode("_-8") == [0xFF, 0xEF])
        #expect(Base64URL.decode("A") == nil, "a length of 1 modulo 4 is no encoding")
        #expect(Base64URL.decode("AB") == nil, "non-zero unused bits: not what encode writes")
        #expect(Base64URL.decode("AAB") == nil, "non-zero unused bits: not what encode writes")
        #expect(Base64URL.decode("AA==") == nil, "padding is not base64url here")
        #expect(Base64URL.decode("AA+/") == nil, "the standard alphabet's characters are refused")
        #expect(Base64URL.decode("AA A") == nil)
    }

    @Test("Two holds on the same event get different, unrelated ids")
    func tokensDiffer() {
        let event = EventID()
        let first = HoldReference(eventID: event), second = HoldReference(eventID: event)
        #expect(first.holdID != second.holdID)
        #expect(first.token != second.token)
    }

    @Test("Local times carry the zone's offset at that instant, across a DST change")
    func localTimes() throws {
        let zone = try #require(TimeZone(identifier: "America/New_York"))
        // 2027-03-14 02:00 EST became 03:00 EDT (07:00Z).
        let before = try RFC3339.date(from: "2027-03-14T06:59:00Z")
        let after = try RFC3339.date(from: "2027-03-14T07:30:00Z")
        #expect(RFC3339.string(from: before, in: zone) == "2027-03-14T01:59:00.000-05:00")
        #expect(RFC3339.string(from: after, in: zone) == "2027-03-14T03:30:00.000-04:00")
        #expect(RFC3339.string(from: after, in: try #require(TimeZone(identifier: "UTC"))) == "2027-03-14T07:30:00.000+00:00")
        #expect(RFC3339.string(from: after, in: try #require(TimeZone(identifier: "Asia/Kolkata"))) == "2027-03-14T13:00:00.000+05:30")
    }
}
