/// Whether two byte sequences are equal, in time that depends only on their lengths, never on where
/// they differ: the one comparison for secrets (signatures, API keys, tokens), so a caller timing
/// the answers cannot find a secret byte by byte.
public func constantTimeEquals(_ lhs: some Sequence<UInt8>, _ rhs: some Sequence<UInt8>) -> Bool {
    let left = Array(lhs)
    let right = Array(rhs)
    guard left.count == right.count else { return false }
    var difference: UInt8 = 0
    for index in left.indices { difference |= left[index] ^ right[index] }
    return difference == 0
}
