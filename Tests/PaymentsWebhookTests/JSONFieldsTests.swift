import Foundation
import SharedModel
import Testing

@testable import PaymentsWebhook

@Suite("Reading fields of a verified body strictly")
struct JSONFieldsTests {
    static func fields(_ text: String) throws(MalformedDelivery) -> JSONFields { try JSONFields(bytes: Array(text.utf8)) }

    /// The reason of the ``MalformedDelivery`` `body` throws; nil when it throws nothing.
    static func reason(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as MalformedDelivery {
            return error.reason
        } catch {
            return "not a MalformedDelivery: \(error)"
        }
    }

    @Test("an integer field takes only a JSON integer within Int64, whichever parser read the body")
    func integersStrictly() throws {
        let read = try Self.fields(#"{"a": {"b": 4500, "min": -9223372036854775808}, "n": null}"#)
        #expect(try read.integer("a.b") == 4500)
        #expect(try read.integer("a.min") == Int64.min)
        #expect(!read.has("n") && !read.has("a.c") && !read.has("a.b.c") && read.has("a.b"))
        // The direct reader declines fractions, exponents and big integers; the fallback keeps them as
        // decimals, which no integer field takes. `true` and "5" are not integers either.
        for value in ["1.5", "1.0", "1e3", "-0.0", "9223372036854775808", "18446744073709551616", "true", #""5""#, "[5]", "{}"] {
            // Alone, and beside a fraction (so that JSONSerialization reads the whole body).
            for body in [#"{"amount": \#(value)}"#, #"{"amount": \#(value), "other": 1.25}"#] {
                #expect(Self.reason { _ = try Self.fields(body).integer("amount") } == "amount must be an integer", "\(body)")
            }
        }
        #expect(Self.reason { _ = try Self.fields(#"{"x": 1}"#).integer("amount") } == "amount must be an integer")
    }

    @Test("strings, booleans and UUIDs are read by type; null counts as absent")
    func otherTypes() throws {
        let id = UUID()
        let read = try Self.fields(
            #"{"s": "pi_1", "e": "", "nul": "a\u0000b", "t": true, "f": false, "u": "\#(id.uuidString)", "bad": "x", "z": null, "one": 1}"#)
        #expect(try read.string("s") == "pi_1")
        #expect(try read.optionalString("z") == nil)
        #expect(Self.reason { _ = try read.string("e") } == "e must be a non-empty string")
        #expect(Self.reason { _ = try read.optionalString("nul") } == "nul must not contain NUL characters")
        #expect(Self.reason { _ = try read.optionalString("one") } == "one must be a string")
        #expect(try read.optionalBoolean("t") == true && read.optionalBoolean("f") == false && read.optionalBoolean("z") == nil)
        #expect(Self.reason { _ = try read.optionalBoolean("one") } == "one must be true or false")
        #expect(try read.strictUUID("u") == id && read.strictUUID("z") == nil)
        #expect(Self.reason { _ = try read.strictUUID("bad") } == "bad must be a UUID or null")
        #expect(read.lenientUUID("u") == id && read.lenientUUID("bad") == nil && read.lenientUUID("one") == nil)
    }

    @Test("a body that is not a JSON object is malformed; what the direct reader leaves undecided is read as before")
    func bodies() throws {
        for text in ["", "{", #"{"a": }"#, "nul"] {
            #expect(Self.reason { _ = try Self.fields(text) } == "the body is not valid JSON", "\(text)")
        }
        for text in ["[]", "[1]", "[1,]", #""text""#, "5"] {
            let reason = Self.reason { _ = try Self.fields(text) }
            #expect(reason == "the body is not a JSON object" || reason == "the body is not valid JSON", "\(text)")
        }
        // A key twice: the direct reader declines it and JSONSerialization reads it, as before.
        let twice = try Self.fields(#"{"id": "evt_1", "id": "evt_1", "amount": 7}"#)
        #expect(try twice.string("id") == "evt_1" && twice.integer("amount") == 7)
    }
}
