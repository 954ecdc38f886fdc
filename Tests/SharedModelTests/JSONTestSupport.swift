import Foundation
import SharedModel
import Testing

/// Encodes `value` with the platform encoder and parses it with JSONSerialization, which knows
/// nothing of the model, so tests see the wire form as any other consumer would.
func wireObject(_ value: some Encodable) throws -> [String: Any] {
    let data = try JSONEncoder.platform.encode(value)
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

/// Encodes and decodes `value` with the platform coders.
func roundTripped<T: Codable>(_ value: T) throws -> T {
    try JSONDecoder.platform.decode(T.self, from: JSONEncoder.platform.encode(value))
}

/// Fixed sample values shared by the event tests.
enum Sample {
    static let bookingID = BookingID(UUID(uuidString: "6F1B7D8E-2C43-4B8A-9E61-0D5A3C2B1A90") ?? UUID())
    static let eventID = EventID(UUID(uuidString: "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D") ?? UUID())
    static let refundID = RefundID(UUID(uuidString: "0F0E0D0C-0B0A-4908-8706-050403020100") ?? UUID())
    static let bookingText = "6f1b7d8e-2c43-4b8a-9e61-0d5a3c2b1a90"
    static let eventText = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
    static let refundText = "0f0e0d0c-0b0a-4908-8706-050403020100"
    /// 2026-11-21T08:44:21.123Z
    static let instant = Date(timeIntervalSince1970: 1_795_250_661.123)
    static let instantText = "2026-11-21T08:44:21.123Z"
    /// 2026-12-24T20:00:00.000Z
    static let later = Date(timeIntervalSince1970: 1_798_142_400)
    static let laterText = "2026-12-24T20:00:00.000Z"
}
