import Foundation
import SharedModel
import Testing

@Suite("Identifiers")
struct IdentifierTests {
    private func decode<T: Decodable>(_ type: T.Type, json: String) throws -> T {
        try JSONDecoder.platform.decode(type, from: Data(json.utf8))
    }

    private func encode(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder.platform.encode(value), as: UTF8.self)
    }

    @Test(
        "invalid seat ids are refused when decoding",
        arguments: [
            #""""#,
            #""   ""#,
            "\"\(String(repeating: "x", count: 129))\"",
            #""A\u000012""#,
            #""A\n12""#,
            #""A-12\n""#,
            #""\tA-12""#,
            #""A\u007F12""#,
            #""A\u202812""#,
            "12",
            "null",
        ])
    func invalidSeatIDs(json: String) {
        #expect(throws: DecodingError.self) { try self.decode(SeatID.self, json: json) }
    }

    @Test("invalid seat ids are refused in code with the reason")
    func invalidSeatIDsInCode() {
        #expect(throws: IdentifierError(identifier: "seat_id", reason: .empty)) { try SeatID("") }
        #expect(throws: IdentifierError(identifier: "seat_id", reason: .empty)) { try SeatID("  ") }
        #expect(throws: IdentifierError(identifier: "seat_id", reason: .tooLong(maximum: 128))) {
            try SeatID(String(repeating: "x", count: 129))
        }
        #expect(throws: IdentifierError(identifier: "seat_id", reason: .controlCharacter)) { try SeatID("A\u{0}1") }
        #expect(throws: IdentifierError(identifier: "customer_id", reason: .controlCharacter)) { try CustomerID("cus\n1") }
    }

    @Test("string ids are trimmed of spaces and keep their text otherwise")
    func validStringIDs() throws {
        #expect(try SeatID(" A-12 ").description == "A-12")
        #expect(try SeatID(" A-12 ") == SeatID("A-12"))
        #expect(try decode(SeatID.self, json: #""  B-7""#) == SeatID("B-7"))
        #expect(try SeatID(String(repeating: "x", count: 128)).description.count == 128)
        #expect(try SeatID("Parkett Ä-1").description == "Parkett Ä-1")
        // Canonically equivalent spellings become one byte sequence (NFC), as Redis and Postgres compare bytes.
        let decomposed = try SeatID("e\u{301}"), composed = try SeatID("\u{E9}")
        #expect(decomposed == composed)
        #expect(Array(decomposed.rawValue.utf8) == Array(composed.rawValue.utf8))
        #expect(Array(decomposed.rawValue.unicodeScalars) == ["\u{E9}"])
        #expect(try encode(CustomerID("cus_123")) == #""cus_123""#)
    }

    @Test("UUID ids encode lower case and accept upper case input")
    func uuidIDs() throws {
        let uuid = try #require(UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F"))
        let booking = BookingID(uuid)
        #expect(try encode(booking) == #""e621e1f8-c36c-495a-93fc-0c247a3e6e5f""#)
        #expect(booking.description == "e621e1f8-c36c-495a-93fc-0c247a3e6e5f")
        #expect(try decode(BookingID.self, json: #""E621E1F8-C36C-495A-93FC-0C247A3E6E5F""#) == booking)
        #expect(try HoldID(parsing: "e621e1f8-c36c-495a-93fc-0c247a3e6e5f").uuid == uuid)
        #expect(try encode(EnvelopeID()).allSatisfy { !$0.isUppercase })
    }

    @Test(
        "malformed UUID ids are refused",
        arguments: [
            #""not-a-uuid""#, #""""#, #""e621e1f8c36c495a93fc0c247a3e6e5f""#, #""{e621e1f8-c36c-495a-93fc-0c247a3e6e5f}""#,
        ])
    func malformedUUIDs(json: String) {
        #expect(throws: DecodingError.self) { try self.decode(BookingID.self, json: json) }
        #expect(throws: DecodingError.self) { try self.decode(RefundID.self, json: json) }
    }

    @Test("new UUID ids are distinct")
    func randomIDs() {
        #expect(HoldID() != HoldID())
    }

    @Test("ids are ordered by their raw values")
    func ordering() throws {
        #expect(try [SeatID("B-2"), SeatID("A-10"), SeatID("A-1")].sorted().map(\.description) == ["A-1", "A-10", "B-2"])
        let low = try EventID(parsing: "00000000-0000-0000-0000-000000000001")
        let high = try EventID(parsing: "ffffffff-0000-0000-0000-000000000000")
        #expect(low < high)
    }

    @Test("ids keyed dictionaries encode as JSON objects")
    func dictionaryKeys() throws {
        let prices = [try SeatID("A-1"): 1500]
        #expect(try encode(prices) == #"{"A-1":1500}"#)
        #expect(try decode([SeatID: Int].self, json: #"{"A-1":1500}"#) == prices)
    }
}
