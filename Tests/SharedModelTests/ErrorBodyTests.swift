import Foundation
import SharedModel
import Testing

@Suite("Error body and JSON values")
struct ErrorBodyTests {
    @Test("the error body has the shape of DESIGN.md")
    func shape() throws {
        let body = ErrorBody(
            code: .seatsUnavailable, message: "some seats are not available",
            details: ["seat_ids": ["A-1", "A-2"]]
        )
        let json = String(decoding: try JSONEncoder.platform.encode(body), as: UTF8.self)
        #expect(json == #"{"error":{"code":"seats_unavailable","details":{"seat_ids":["A-1","A-2"]},"message":"some seats are not available"}}"#)
        #expect(try roundTripped(body) == body)
    }

    @Test("details are an explicit null when absent, and may be null or missing on input")
    func nullDetails() throws {
        let body = ErrorBody(code: .notFound, message: "no such booking")
        let json = String(decoding: try JSONEncoder.platform.encode(body), as: UTF8.self)
        #expect(json == #"{"error":{"code":"not_found","details":null,"message":"no such booking"}}"#)
        let missing = try JSONDecoder.platform.decode(ErrorBody.self, from: Data(#"{"error":{"code":"not_found","message":"no such booking"}}"#.utf8))
        #expect(missing == body)
    }

    @Test(
        "well-known codes and their HTTP statuses",
        arguments: [
            (ErrorCode.badRequest, "bad_request", 400), (.invalidSignature, "invalid_signature", 400),
            (.unauthorized, "unauthorized", 401), (.forbidden, "forbidden", 403), (.notFound, "not_found", 404),
            (.conflict, "conflict", 409), (.seatsUnavailable, "seats_unavailable", 409),
            (.payloadTooLarge, "payload_too_large", 413), (.unprocessable, "unprocessable", 422),
            (.validationFailed, "validation_failed", 422), (.idempotencyKeyReused, "idempotency_key_reused", 422),
            (.rateLimited, "rate_limited", 429), (.internalError, "internal_error", 500),
            (.dependencyUnavailable, "dependency_unavailable", 503),
        ])
    func codes(code: ErrorCode, wire: String, status: Int) {
        #expect(code.rawValue == wire)
        #expect(code.httpStatus == status)
    }

    @Test("an unknown code decodes and has no built-in status")
    func unknownCode() throws {
        let body = try JSONDecoder.platform.decode(ErrorBody.self, from: Data(#"{"error":{"code":"teapot","message":"x","details":{}}}"#.utf8))
        #expect(body.error.code == "teapot")
        #expect(body.error.code.httpStatus == nil)
        #expect(body.error.details == [:])
    }

    @Test(
        "JSON values keep integers as integers and other numbers exactly",
        arguments: [
            ("1", JSONValue.integer(1)),
            ("-9223372036854775808", .integer(.min)),
            ("true", .bool(true)),
            ("null", .null),
            (#""1""#, .string("1")),
            ("1.5", .number(Decimal(string: "1.5") ?? 0)),
            ("9223372036854775808", .number(Decimal(string: "9223372036854775808") ?? 0)),
            (#"[1,"a",null]"#, JSONValue.array([1, "a", nil])),
            (#"{"a":{"b":false}}"#, JSONValue.object(["a": ["b": false]])),
        ])
    func values(json: String, expected: JSONValue) throws {
        let value = try JSONDecoder.platform.decode(JSONValue.self, from: Data(json.utf8))
        #expect(value == expected)
        #expect(String(decoding: try JSONEncoder.platform.encode(value), as: UTF8.self) == json)
    }
}
