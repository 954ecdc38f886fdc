import HTTPTypes
import Hummingbird

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}

/// JSON responses with exact bytes.
enum JSONResponse {
    /// `application/json` with `body` as is.
    static func make(status: Int, body: [UInt8], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: .init(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// `json` serialized.
    static func make(status: Int = 200, json: SimulatorJSON) -> Response {
        make(status: status, body: json.bytes)
    }

    /// Like ``make(status:body:headers:)``, calling `afterSending` once the body has been written
    /// (or writing it failed), so work it starts cannot overtake the answer.
    static func make(status: Int, body: [UInt8], headers: HTTPFields, afterSending: @escaping @Sendable () -> Void) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        let buffer = ByteBuffer(bytes: body)
        return Response(
            status: .init(code: status), headers: headers,
            body: ResponseBody(contentLength: buffer.readableBytes) { writer in
                defer { afterSending() }
                try await writer.write(buffer)
                try await writer.finish(nil)
            })
    }
}
