import Foundation
import Glibc
import Synchronization

/// A service executable started by a test, with its output captured in a file.
public struct ServiceProcess: Sendable {
    public let name: String
    public let port: Int
    public let child: ChildProcess
    public let outputPath: String

    /// Starts `<SERVICE_BIN_DIR>/<name> <arguments>` with `environment` (added to a minimal base: PATH and HOME).
    public static func start(_ name: String, arguments: [String] = [], environment: [String: String], port: Int = 0) throws -> ServiceProcess {
        let binary = try TestEnvironment.binDirectory() + "/" + name
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8)).log").path
        var base = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        base["HOME"] = ProcessInfo.processInfo.environment["HOME"]
        let child = try ChildProcess(
            executable: binary,
            arguments: arguments,
            environment: base.merging(environment) { _, new in new },
            outputPath: outputPath
        )
        DisruptableServers.started(child)
        return ServiceProcess(name: name, port: port, child: child, outputPath: outputPath)
    }

    /// Everything the process wrote so far.
    public var output: String {
        (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }
}

/// A TCP port on 127.0.0.1 for a process a test starts: nothing listens on it, and no other call in
/// this test process was given it.
///
/// The ports come from below the kernel's ephemeral range (`ip_local_port_range`), walked from a
/// random start. A port the kernel assigned (bound to port 0, then released) is in that range, where
/// every outgoing connection takes its local port and where another test's port-0 probe may get the
/// same number again; a service started a second later then failed to bind, and the test talked to
/// whoever had the port (a notification process under the full suite exited 1 that way).
public func freePort() throws -> Int {
    try TestPorts.shared.next()
}

/// The ports ``freePort()`` hands out, each at most once per test process.
final class TestPorts: Sendable {
    static let shared = TestPorts(range: TestPorts.belowEphemeralRange())

    private let range: Range<Int>
    private let cursor: Mutex<Int>

    init(range: Range<Int>) {
        self.range = range
        cursor = Mutex(Int.random(in: range))
    }

    func next() throws -> Int {
        try cursor.withLock { cursor in
            for _ in range {
                let port = cursor
                cursor = cursor + 1 == range.upperBound ? range.lowerBound : cursor + 1
                if Self.canBind(port) { return port }
            }
            throw POSIXError(.EADDRINUSE)
        }
    }

    /// From 10000 up to the kernel's ephemeral range (32768 when it cannot be read); 10000-19999 when
    /// that range starts lower (the ports are then still given out once each).
    static func belowEphemeralRange() -> Range<Int> {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let start = text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32_768
        return start >= 12_000 ? 10_000..<start : 10_000..<20_000
    }

    /// True when a socket can bind 127.0.0.1:`port` (nothing listens on it, no connection uses it).
    private static func canBind(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return bindLoopback(descriptor, port: port)
    }
}

/// Binds the socket `descriptor` to 127.0.0.1:`port`; true when it could.
public func bindLoopback(_ descriptor: Int32, port: Int) -> Bool {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
