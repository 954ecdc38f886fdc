import Foundation
import Glibc

/// A plain TCP connection to a local server, for tests that must control exactly which bytes are sent
/// when (e.g. a request whose body has not been sent yet). Non-blocking: waiting polls and sleeps, so
/// it never holds a thread of the cooperative pool the server under test needs.
public final class RawTCPConnection {
    private let descriptor: Int32

    /// Connects to `127.0.0.1:port`.
    public init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            close(descriptor)
            throw POSIXError(.ECONNREFUSED)
        }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    }

    deinit { close(descriptor) }

    /// Sends all of `bytes`, waiting while the peer's receive window is full (at most `timeout`).
    public func send(_ bytes: [UInt8], timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                offset += sent
            } else if sent < 0, errno == EAGAIN || errno == EWOULDBLOCK, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            } else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
    }

    /// Sends `text` as UTF-8.
    public func send(_ text: String, timeout: Duration = .seconds(10)) async throws {
        try await send(Array(text.utf8), timeout: timeout)
    }

    /// Reads until what arrived contains `marker` (returned, everything read so far) or `timeout`
    /// passes (nil). Throws when the peer closes or resets the connection first.
    ///
    /// The socket is always read once more after the deadline: on a loaded machine a 5 ms sleep can
    /// resume seconds late, and what the peer did in time (a close, the marker) must still be seen.
    public func read(until marker: String, timeout: Duration) async throws -> String? {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += chunk[..<count]
                let text = String(decoding: received, as: UTF8.self)
                if text.contains(marker) { return text }
                if ContinuousClock.now >= deadline { return nil }
            } else if count == 0 {
                throw POSIXError(.ECONNRESET)
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                if ContinuousClock.now >= deadline { return nil }
                try await Task.sleep(for: .milliseconds(5))
            } else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
    }
}
