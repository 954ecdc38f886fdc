import Crypto

/// What the two signature schemes share: the HMAC-SHA256 of a signed prefix and the raw body, and
/// the comparison of the expected codes with the signatures a header offers.
enum SignatureMatching {
    /// The most signatures one header may carry (of any version); more make the header malformed,
    /// so a header cannot multiply the comparisons a request costs.
    static let maximumSignatures = 8

    /// HMAC-SHA256 of `prefix` followed by `payload` (fed in two parts: the body is never copied).
    static func code(key: SymmetricKey, prefix: [UInt8], payload: [UInt8]) -> HashedAuthenticationCode<SHA256> {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: prefix)
        hmac.update(data: payload)
        return hmac.finalize()
    }

    /// Whether any of `candidates` is the code of `prefix + payload` under any of `keys`. One HMAC per
    /// key, then every key's code against every candidate in constant time, without stopping at a
    /// match, so the time taken does not reveal which secret or signature matched.
    static func anyMatches(keys: [SymmetricKey], prefix: [UInt8], payload: [UInt8], candidates: [[UInt8]]) -> Bool {
        var matched = false
        for key in keys {
            let expected = code(key: key, prefix: prefix, payload: payload)
            for candidate in candidates where constantTimeEquals(expected, candidate) {
                matched = true
            }
        }
        return matched
    }
}
