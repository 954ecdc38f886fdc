import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension UUID {
    /// A new random (version 4, RFC 9562) UUID: 122 bits from the kernel's CSPRNG (`getrandom`).
    ///
    /// `UUID()` in this Foundation opens, reads and closes `/dev/urandom` for every UUID; the hold
    /// route's profile found that at 4.9% of the booking service's CPU. This takes the bytes from
    /// a process-wide buffer filled 4 KiB at a time by one `getrandom` call, so 256 UUIDs cost one
    /// system call. The buffer's bytes are handed out once and zeroed as they go.
    public static func random() -> UUID {
        var bytes = RandomBytes.shared.take16()
        bytes.6 = (bytes.6 & 0x0F) | 0x40  // version 4
        bytes.8 = (bytes.8 & 0x3F) | 0x80  // variant 10
        return UUID(uuid: bytes)
    }

    /// A new time-ordered (version 7, RFC 9562) UUID: the Unix time in milliseconds in the first 48
    /// bits, then 74 bits from the kernel's CSPRNG (the version and variant take the other six).
    ///
    /// Rows keyed by these go to the right-hand end of their B-tree index, as with a sequence, instead
    /// of to a random leaf page: the pages being written stay few and in memory, and after each
    /// checkpoint only those pages' first changes are logged as full-page images, where random keys
    /// log a whole page for nearly every insert until every leaf of the index has been written once
    /// (docs/performance.md, "Time-ordered identifiers"). Within one millisecond the order is random;
    /// a clock stepping back only costs that locality. The creation time is readable from the value,
    /// so identifiers that must reveal nothing (a hold's fencing token) stay ``random()``.
    public static func timeOrdered(at date: Date = Date()) -> UUID {
        var bytes = RandomBytes.shared.take16()
        // 48 bits hold milliseconds until the year 10889; a date outside them is clamped, never a trap.
        let milliseconds = UInt64(min(max(0, (date.timeIntervalSince1970 * 1000).rounded(.down)), Double((1 << 48) - 1)))
        bytes.0 = UInt8(truncatingIfNeeded: milliseconds >> 40)
        bytes.1 = UInt8(truncatingIfNeeded: milliseconds >> 32)
        bytes.2 = UInt8(truncatingIfNeeded: milliseconds >> 24)
        bytes.3 = UInt8(truncatingIfNeeded: milliseconds >> 16)
        bytes.4 = UInt8(truncatingIfNeeded: milliseconds >> 8)
        bytes.5 = UInt8(truncatingIfNeeded: milliseconds)
        bytes.6 = (bytes.6 & 0x0F) | 0x70  // version 7
        bytes.8 = (bytes.8 & 0x3F) | 0x80  // variant 10
        return UUID(uuid: bytes)
    }
}

/// Bytes from the kernel's CSPRNG, fetched in blocks.
final class RandomBytes: Sendable {
    static let shared = RandomBytes()

    private static let blockSize = 4096
    private struct Block {
        var bytes = [UInt8](repeating: 0, count: RandomBytes.blockSize)
        var next = RandomBytes.blockSize
    }
    private let block = Mutex(Block())

    /// 16 bytes no one else was given.
    func take16() -> uuid_t {
        block.withLock { block in
            if block.next + 16 > block.bytes.count {
                Self.fill(&block.bytes)
                block.next = 0
            }
            var out: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            block.bytes.withUnsafeMutableBytes { buffer in
                let start = buffer.baseAddress! + block.next
                withUnsafeMutableBytes(of: &out) { $0.copyMemory(from: UnsafeRawBufferPointer(start: start, count: 16)) }
                start.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
            }
            block.next += 16
            return out
        }
    }

    /// Fills `bytes` from the kernel's CSPRNG: glibc's `arc4random_buf` is one `getrandom` call.
    private static func fill(_ bytes: inout [UInt8]) {
        #if canImport(Glibc) || canImport(Darwin)
            bytes.withUnsafeMutableBytes { buffer in
                if let base = buffer.baseAddress { arc4random_buf(base, buffer.count) }
            }
        #else
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = generator.next() }
        #endif
    }
}
