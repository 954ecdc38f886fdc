import Foundation
import Hummingbird
import SharedModel

/// Decodes request bodies (`request.decode(as:context:)`) as `JSONDecoder.platform` does, through
/// ``SharedModel/JSONValueDecoder``: the direct path where it decides the body, `JSONDecoder`'s value
/// or error everywhere else. The body is collected up to the context's `maxUploadSize`, as
/// Hummingbird's `JSONDecoder` conformance collects it.
public struct PlatformRequestDecoder: RequestDecoder {
    public init() {}

    public func decode<Value: Decodable>(_ type: Value.Type, from request: Request, context: some RequestContext) async throws -> Value {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        return try JSONValueDecoder.decode(type, from: Data(buffer.readableBytesView))
    }
}
