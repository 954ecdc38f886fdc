import Foundation
import Glibc

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

/// A TCP port that was free a moment ago (bound to port 0, read back, released).
public func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
