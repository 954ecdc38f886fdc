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
        guard token.utf8.count == 43, let bytes = Base64URL.decode(token), bytes.count == 32 else { return nil }
        self.eventID = EventID(Self.uuid(bytes[0..<16]))
        self.holdID = HoldID(Self.uuid(bytes[16..<32]))
    }

    /// The wire form.
    var token: String { Base64URL.encode(Self.bytes(of: eventID.uuid) + Self.bytes(of: holdID.uuid)) }

    var description: String { token }

    private static func bytes(of uuid: UUID) -> [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    private static func uuid(_ bytes: ArraySlice<UInt8>) -> UUID {
        let b = Array(bytes)
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}
