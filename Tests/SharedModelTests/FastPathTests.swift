import Foundation
import Testing

@testable import SharedModel

/// The fast paths the profiles asked for must answer exactly what the general code answers.
@Suite("Fast paths: random and time-ordered UUIDs, ASCII identifiers")
struct FastPathTests {
    @Test("UUID.random gives version 4, variant 10 UUIDs, all different, across many buffer refills")
    func randomUUIDs() {
        var seen = Set<UUID>()
        // 20,000 UUIDs are 78 refills of the 4 KiB buffer.
        for _ in 0..<20_000 {
            let uuid = UUID.random()
            let bytes = uuid.uuid
            #expect(bytes.6 >> 4 == 4, "version nibble of \(uuid)")
            #expect(bytes.8 >> 6 == 0b10, "variant bits of \(uuid)")
            seen.insert(uuid)
        }
        #expect(seen.count == 20_000)
        // Every one of the 122 random bits takes both values (a stuck bit would be a broken generator).
        var ones = [Int](repeating: 0, count: 128)
        for uuid in seen {
            withUnsafeBytes(of: uuid.uuid) { raw in
                for bit in 0..<128 where raw[bit / 8] >> (7 - UInt8(bit % 8)) & 1 == 1 { ones[bit] += 1 }
            }
        }
        let fixed: Set<Int> = [48, 49, 50, 51, 64, 65]
        for bit in 0..<128 where !fixed.contains(bit) {
            #expect((9_000...11_000).contains(ones[bit]), "bit \(bit) was set in \(ones[bit]) of 20,000")
        }
    }

    @Test("UUID.random is safe from many tasks at once: no UUID handed out twice")
    func concurrentRandomUUIDs() async {
        let all = await withTaskGroup(of: [UUID].self) { group in
            for _ in 0..<8 { group.addTask { (0..<2_000).map { _ in UUID.random() } } }
            return await group.reduce(into: [UUID]()) { $0 += $1 }
        }
        #expect(Set(all).count == 16_000)
    }

    @Test("UUID.timeOrdered gives version 7, variant 10 UUIDs: the time in milliseconds first, then 74 random bits")
    func timeOrderedUUIDs() throws {
        let at = Date(timeIntervalSince1970: 1_796_440_000.123_9)  // 2026-12-05T03:06:40.123Z
        var seen = Set<UUID>()
        var ones = [Int](repeating: 0, count: 128)
        for _ in 0..<20_000 {
            let uuid = UUID.timeOrdered(at: at)
            let bytes = uuid.uuid
            #expect(bytes.6 >> 4 == 7, "version nibble of \(uuid)")
            #expect(bytes.8 >> 6 == 0b10, "variant bits of \(uuid)")
            let milliseconds = [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            #expect(milliseconds == 1_796_440_000_123)
            withUnsafeBytes(of: bytes) { raw in
                for bit in 0..<128 where raw[bit / 8] >> (7 - UInt8(bit % 8)) & 1 == 1 { ones[bit] += 1 }
            }
            seen.insert(uuid)
        }
        #expect(seen.count == 20_000)
        let fixed = Set(0..<48).union([48, 49, 50, 51, 64, 65])
        for bit in 0..<128 where !fixed.contains(bit) {
            #expect((9_000...11_000).contains(ones[bit]), "bit \(bit) was set in \(ones[bit]) of 20,000")
        }
        // A later millisecond sorts after an earlier one, whatever the random bits (byte order is
        // Postgres' uuid order).
        let earlier = (0..<1_000).map { _ in UUID.timeOrdered(at: at) }
        let later = (0..<1_000).map { _ in UUID.timeOrdered(at: at.addingTimeInterval(0.001)) }
        let greatestEarlier = try #require(earlier.map { EventID($0) }.max())
        let leastLater = try #require(later.map { EventID($0) }.min())
        #expect(greatestEarlier < leastLater)
        #expect(UUID(uuidString: UUID.timeOrdered().uuidString) != nil)
        // Dates outside the 48 bits are clamped, not a trap.
        let early = UUID.timeOrdered(at: Date(timeIntervalSince1970: -1)).uuid
        #expect([early.0, early.1, early.2, early.3, early.4, early.5] == [0, 0, 0, 0, 0, 0])
        let late = UUID.timeOrdered(at: Date(timeIntervalSince1970: 1e15)).uuid
        #expect([late.0, late.1, late.2, late.3, late.4, late.5] == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
    }

    @Test("New identifiers are time-ordered, except the secret ones (a hold's fencing token), which are random")
    func identifierKinds() {
        #expect(BookingID().uuid.uuid.6 >> 4 == 7)
        #expect(EnvelopeID().uuid.uuid.6 >> 4 == 7)
        #expect(EventID().uuid.uuid.6 >> 4 == 7)
        #expect(RefundID().uuid.uuid.6 >> 4 == 7)
        #expect(HoldID().uuid.uuid.6 >> 4 == 4)
        let before = UInt64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        let made = BookingID().uuid.uuid
        let after = UInt64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        let milliseconds = [made.0, made.1, made.2, made.3, made.4, made.5].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect((before...after).contains(milliseconds))
    }

    @Test("UUID.lowercasedString is uuidString.lowercased(), and parses back to the same UUID")
    func lowercasedUUIDText() throws {
        var samples = (0..<5_000).map { _ in UUID.random() }
        samples.append(try #require(UUID(uuidString: "00000000-0000-0000-0000-000000000000")))
        samples.append(try #require(UUID(uuidString: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF")))
        samples.append(try #require(UUID(uuidString: "0A1B2C3D-4E5F-6789-ABCD-EF0123456789")))
        for uuid in samples {
            #expect(uuid.lowercasedString == uuid.uuidString.lowercased())
            #expect(UUID(uuidString: uuid.lowercasedString) == uuid)
        }
        #expect(EventID(samples[samples.count - 1]).description == "0a1b2c3d-4e5f-6789-abcd-ef0123456789")
    }

    @Test("The printable-ASCII fast path accepts only what the full rules accept unchanged")
    func asciiFastPathAgrees() throws {
        var samples: [String] = [
            "A-12", "customer-1", " A-12", "A-12 ", " ", "", "a b", "tab\there", "new\nline", "del\u{7F}",
            String(repeating: "x", count: 128), String(repeating: "x", count: 129), "é", "e\u{301}", "\u{00A0}x",
            "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./", "\r\n",
        ]
        var generator = SystemRandomNumberGenerator()
        let pool = Array((0x00...0x7F).map { Character(Unicode.Scalar(UInt8($0))) }) + ["é", "\u{301}", "\u{2028}"]
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...6, using: &generator)
            samples.append(String((0..<length).map { _ in pool.randomElement(using: &generator) ?? "x" }))
        }
        for sample in samples {
            let full = Result { () throws(IdentifierError.Reason) -> String in try String.validateUnicode(sample) }
            if let fast = String.printableASCII(sample) {
                #expect(fast == sample)
                #expect(try full.get() == sample, "the fast path accepted \(sample.debugDescription)")
            }
            // The public entry point answers what the full rules answer, whichever path it takes.
            let public_ = Result { () throws(IdentifierError.Reason) -> String in try String.validateIdentifier(sample) }
            switch (public_, full) {
            case (.success(let a), .success(let b)): #expect(a == b && Array(a.utf8) == Array(b.utf8))
            case (.failure(let a), .failure(let b)): #expect(a == b)
            default: Issue.record("\(sample.debugDescription): \(public_) but the full rules say \(full)")
            }
        }
        #expect(String.printableASCII("A-12") != nil)
        #expect(String.printableASCII(" A-12") == nil)
        #expect(String.printableASCII(String(repeating: "x", count: 129)) == nil)
    }
}
