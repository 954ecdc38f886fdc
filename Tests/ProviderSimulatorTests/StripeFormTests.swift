import ServiceKit
import Testing

@testable import ProviderSimulator

@Suite("Form-encoded bodies")
struct StripeFormTests {
    @Test("percent-decoding, + as space, bracket families, last value wins")
    func parsing() throws {
        let form = try StripeForm(
            parsing: "amount=2500&metadata[booking_id]=bk_1&metadata%5Bnote%5D=a+b%2Bc%20d&metadata[empty]=&flag&amount=2600&&x%C3%A9=%E2%82%AC")
        #expect(form["amount"] == "2600")
        #expect(form["flag"] == "")
        #expect(form["xé"] == "€")
        #expect(form.dictionary("metadata") == ["booking_id": "bk_1", "note": "a b+c d", "empty": ""])
        #expect(form.dictionary("meta").isEmpty)
    }

    @Test("what the provider client writes, the simulator reads back: brackets, +, &, =, spaces, non-ASCII")
    func roundTrip() throws {
        let pairs = [
            ("amount", "2500"), ("metadata[booking_id]", "bk_1"), ("metadata[customer_id]", "a+b@example.com"),
            ("metadata[note]", "x&y=z 100%"), ("description", "caf\u{E9} \u{20AC}"),
        ]
        let encoded = StripeForm(pairs: pairs).encoded
        #expect(encoded.hasPrefix("amount=2500&metadata%5Bbooking_id%5D=bk_1&metadata%5Bcustomer_id%5D=a%2Bb%40example.com&"))
        let read = try StripeForm(parsing: encoded)
        #expect(read.pairs.map(\.name) == pairs.map(\.0))
        #expect(read.pairs.map(\.value) == pairs.map(\.1))
        #expect(read.dictionary("metadata") == ["booking_id": "bk_1", "customer_id": "a+b@example.com", "note": "x&y=z 100%"])
    }

    @Test("canonical parameters ignore order but not values")
    func canonical() throws {
        let first = try StripeForm(parsing: "a=1&b=2&metadata[x]=y")
        let reordered = try StripeForm(parsing: "metadata%5Bx%5D=y&b=2&a=1")
        let changed = try StripeForm(parsing: "a=1&b=3&metadata[x]=y")
        #expect(first.canonical == reordered.canonical)
        #expect(first.canonical != changed.canonical)
    }

    @Test("broken percent-encoding and invalid UTF-8 are refused", arguments: ["a=%G1", "a=%4", "a=%", "a=%FF", "=value"])
    func malformed(_ text: String) {
        #expect(throws: StripeForm.Malformed.self) { try StripeForm(parsing: text) }
    }

    @Test("a body that is not UTF-8 is refused")
    func notUTF8() {
        #expect(throws: StripeForm.Malformed.self) { try StripeForm(body: [0x61, 0x3D, 0xFF]) }
    }
}

@Suite("Serialized JSON")
struct SimulatorJSONTests {
    @Test("objects keep member order, metadata is sorted, strings are escaped, slashes are not")
    func serialization() {
        let value = SimulatorJSON.object([
            ("z", .int(-1)), ("a", .sortedStrings(["b": "2", "a": "1"])), ("s", .string("q\"\\/\n\u{01}é")), ("n", .null),
            ("l", .array([.bool(true), .raw(Array("{}".utf8))])),
        ])
        #expect(String(decoding: value.bytes, as: UTF8.self) == #"{"z":-1,"a":{"a":"1","b":"2"},"s":"q\"\\/\n\u0001é","n":null,"l":[true,{}]}"#)
    }
}
