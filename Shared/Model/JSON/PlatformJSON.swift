import Foundation

extension JSONEncoder {
    /// A new encoder configured as every service writes JSON: keys sorted (deterministic output,
    /// stable hashes and test fixtures), slashes unescaped, `Date` values as RFC 3339 UTC with
    /// milliseconds. Key names come from each type's explicit `CodingKeys` (snake_case), never
    /// from a key strategy, so they cannot drift with configuration.
    public static var platform: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.string(from: date))
        }
        return encoder
    }
}

extension JSONDecoder {
    /// A new decoder matching ``Foundation/JSONEncoder/platform``: `Date` values must be RFC 3339
    /// strings with an explicit offset (any offset, fraction digits optional); anything else
    /// throws `DecodingError.dataCorrupted`.
    public static var platform: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            do {
                return try RFC3339.date(from: text)
            } catch {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: String(describing: error))
            }
        }
        return decoder
    }
}
