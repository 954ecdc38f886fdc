import Foundation
import Messaging
import TestSupport
import Testing

@Suite("List cursor")
struct ListCursorTests {
    @Test("a cursor round-trips through its text")
    func roundTrip() throws {
        let id = UUID()
        for micros: Int64 in [0, 1, 1_764_720_000_123_456, 253_402_300_799_000_000] {
            let cursor = ListCursor(createdAt: Date(timeIntervalSince1970: Double(micros) / 1_000_000), id: id)
            let parsed = try #require(ListCursor(cursor.description), "\(micros)")
            #expect(parsed.id == id)
            #expect(parsed.description == cursor.description)
        }
    }

    @Test("crafted and extreme cursors are refused, never trap", arguments: CraftedCursors.all)
    func refusesCrafted(_ text: String) {
        #expect(ListCursor(text) == nil)
    }

    @Test("every 64-bit boundary and random integer either parses into 1970-9999 or is refused")
    func fuzzIntegers() {
        var generator = SystemRandomNumberGenerator()
        var values: [Int64] = [.min, .min + 1, -1, 0, 1, .max - 1, .max, ListCursor.microsecondRange.upperBound + 1]
        for _ in 0..<10_000 { values.append(Int64.random(in: .min ... .max, using: &generator)) }
        for value in values {
            let text = "\(value)_\(UUID().uuidString)"
            if let cursor = ListCursor(text) {
                #expect(ListCursor.microsecondRange.contains(value))
                #expect(cursor.createdAt.timeIntervalSince1970 >= 0 && cursor.createdAt.timeIntervalSince1970 < 253_402_300_800)
            } else {
                #expect(!ListCursor.microsecondRange.contains(value))
            }
        }
    }
}
