import ArgumentParser
import Foundation
import SharedModel

/// `platform-bench json`: the services' JSON encoding and decoding without servers, ours
/// (``JSONValueEncoder``, ``JSONValueDecoder``) against Foundation's `JSONEncoder.platform` and
/// `JSONDecoder.platform` doing the same. Every booking encodes its 201 body (about the size of
/// ``WideObject``), two events into envelopes and the envelopes into the outbox, and decodes two
/// request bodies (a hold's has the shape of ``HoldRequest``); every consumer decodes each event it handles from
/// its envelope's data.
struct JSONBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json",
        abstract: "JSON encoding and decoding per value: JSONValueEncoder and JSONValueDecoder against JSONEncoder and JSONDecoder (no servers).")
    @Option(help: "Encodings or decodings of each shape per measurement.") var iterations: Int = 20_000
    @Option(help: "Measurements of each shape (the fastest is reported).") var rounds: Int = 5

    /// An object of the size and kinds of a booking's 201 body: 20 members (identifiers, strings,
    /// integers, RFC 3339 times, nulls) encoded out of key order, a nested object of two, and an array
    /// of four seat ids.
    struct WideObject: Encodable {
        struct Key: CodingKey {
            let stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        let keys = (0..<20).map { Key(stringValue: "member_\(($0 * 7) % 20)") }
        let texts = (0..<20).map { "value \($0)" }
        let ids: [BookingID]
        let seats: [SeatID]
        let time: String

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            for (index, key) in keys.enumerated() {
                switch index % 5 {
                case 0: try container.encode(ids[index % ids.count], forKey: key)
                case 1: try container.encode(texts[index], forKey: key)
                case 2: try container.encode(Int64(index) * 1_000, forKey: key)
                case 3: try container.encode(time, forKey: key)
                default: try container.encode(String?.none, forKey: key)
                }
            }
            var nested = container.nestedContainer(keyedBy: Key.self, forKey: Key(stringValue: "payment"))
            try nested.encode(texts[0], forKey: Key(stringValue: "provider_ref"))
            try nested.encodeNil(forKey: Key(stringValue: "client_secret"))
            try container.encode(seats, forKey: Key(stringValue: "seat_ids"))
        }
    }

    /// A request body of a hold's shape: two string members and an array of strings.
    struct HoldRequest: Decodable, Equatable {
        let strings: [String]
        let list: [String]

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: WideObject.Key.self)
            strings = try ["event_id", "customer_id"].map { try container.decode(String.self, forKey: WideObject.Key(stringValue: $0)) }
            list = try container.decode([String].self, forKey: WideObject.Key(stringValue: "seat_ids"))
        }
    }

    func run() async throws {
        let now = Date()
        let seats = try (1...4).map { try SeatID("A-\($0)") }
        let body = WideObject(ids: [BookingID(), BookingID()], seats: seats, time: RFC3339.string(from: now))
        let requested = BookingRequested(
            bookingID: BookingID(), eventID: EventID(), hostID: try HostID("host-7"), customerID: try CustomerID("customer-42"),
            seatIDs: seats, amount: Money(amount: 12_000, currency: try Currency("EUR")), paymentDueAt: now)
        let envelope = try EventEnvelope(
            event: requested, occurredAt: now, sequence: 0, correlationID: "req-1", causationID: nil, producer: .booking)
        let platform = JSONEncoder.platform
        guard try JSONValueEncoder.jsonBytes(body) == Array(try platform.encode(body)) else {
            throw ValidationError("JSONValueEncoder and JSONEncoder.platform wrote different bytes for the wide object")
        }
        let holdBody = Data(#"{"event_id":"\#(EventID())","seat_ids":["A-1","A-2","A-3","A-4"],"customer_id":"customer-42"}"#.utf8)
        let decoder = JSONDecoder.platform
        guard try JSONValueDecoder.decode(HoldRequest.self, from: holdBody) == (try decoder.decode(HoldRequest.self, from: holdBody)),
            try JSONValueDecoder.decode(BookingRequested.self, from: envelope.data)
                == (try decoder.decode(BookingRequested.self, from: platform.encode(envelope.data)))
        else {
            throw ValidationError("JSONValueDecoder and JSONDecoder.platform decoded different values")
        }

        MicroBench.write("json: fastest of \(rounds) rounds of \(iterations) encodings or decodings each, one thread")
        var bench = MicroBench(iterations: iterations, rounds: rounds)
        try bench.measure("wide_object_ours") { try JSONValueEncoder.jsonBytes(body).count }
        try bench.measure("wide_object_platform") { try platform.encode(body).count }
        try bench.measure("event_value_ours") {
            if case .object(let members) = try JSONValueEncoder.encode(requested) { return members.count }
            return 0
        }
        try bench.measure("envelope_ours") {
            try EventEnvelope(event: requested, occurredAt: now, sequence: 0, correlationID: "req-1", causationID: nil, producer: .booking)
                .jsonBytes().count
        }
        bench.measure("envelope_bytes_ours") { envelope.jsonBytes().count }
        try bench.measure("envelope_platform") { try platform.encode(envelope).count }
        try bench.measure("hold_request_ours") { try JSONValueDecoder.decode(HoldRequest.self, from: holdBody).list.count }
        try bench.measure("hold_request_platform") { try decoder.decode(HoldRequest.self, from: holdBody).list.count }
        try bench.measure("event_typed_ours") { try JSONValueDecoder.decode(BookingRequested.self, from: envelope.data).seatIDs.count }
        try bench.measure("event_typed_platform") {
            try decoder.decode(BookingRequested.self, from: try platform.encode(envelope.data)).seatIDs.count
        }
        MicroBench.write(bench.summary(prefix: "json"))
    }
}
