import Foundation
import SharedModel

/// What a client's `hold_id` names: the event whose seats are held and the hold's random id (its
/// fencing token in every seat key). The wire form is opaque to clients: the 32 bytes of both UUIDs
/// in unpadded base64url (43 characters). Carrying the event lets every hold operation address
/// the event's Redis hash slot directly; the 122 random bits of the hold's UUID keep it unguessable.
struct HoldReference: Sendable, Hashable, CustomStringConvertible {
    let eventID: EventID
    let holdID: HoldID

    init(eventID: EventID, holdID: HoldID = HoldID()) {
        self.eventID = eventID
        self.holdID = holdID
    }

    /// Parses a token this service issued; nil for anything else.
    init?(token: String) {
        guard token.utf8.count == 43, token.utf8.allSatisfy({ Self.isBase64URL($0) }) else { return nil }
        let standard = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "="
        guard let data = Data(base64Encoded: standard), data.count == 32 else { return nil }
        let bytes = Array(data)
        self.eventID = EventID(Self.uuid(bytes[0..<16]))
        self.holdID = HoldID(Self.uuid(bytes[16..<32]))
    }

    /// The wire form.
    var token: String {
        let bytes = Self.bytes(of: eventID.uuid) + Self.bytes(of: holdID.uuid)
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    var description: String { token }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }

    private static func bytes(of uuid: UUID) -> [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    private static func uuid(_ bytes: ArraySlice<UInt8>) -> UUID {
        let b = Array(bytes)
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}
