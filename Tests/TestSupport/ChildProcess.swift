import Foundation
import Glibc
import Synchronization

/// A child process started with `posix_spawn` and a clean signal state.
///
/// Swift's cooperative threads run with most signals blocked, and a spawned child inherits its parent
/// thread's mask: a Postgres or service started from a test that way cannot see SIGTERM or SIGCHLD, and
/// hangs. This spawns with an empty mask and default dispositions, and reaps the child on a dedicated
/// thread, so waiting never blocks the cooperative pool.
public final class ChildProcess: Sendable {
    /// How a child ended.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    public struct SpawnFailure: Error, CustomStringConvertible {
        public let executable: String
        public let errno: Int32
        public var description: String { "could not start \(executable): \(String(cString: strerror(errno)))" }
    }

    public let pid: pid_t
    public let executable: String
    private let state = Mutex<(termination: Termination?, waiters: [CheckedContinuation<Termination, Never>])>((nil, []))

    /// Starts `executable`. Output goes to `outputPath` (appended) or is inherited.
    public init(executable: String, arguments: [String] = [], environment: [String: String]? = nil, outputPath: String? = nil) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        if let outputPath {
            posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO)
        }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentStrings = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { environmentStrings.forEach { free($0) } }

        var pid = pid_t()
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environmentStrings)
        guard result == 0 else { throw SpawnFailure(executable: executable, errno: result) }
        self.pid = pid
        self.executable = executable
        let reaper = Thread { [self] in self.reap() }
        reaper.name = "reaper-\(pid)"
        reaper.start()
    }

    private func reap() {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let termination: Termination = (status & 0x7F) == 0 ? .exited((status >> 8) & 0xFF) : .signalled(status & 0x7F)
        let waiters = state.withLock { state in
            state.termination = termination
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: termination) }
    }

    /// Sends a signal (e.g. `SIGTERM`).
    public func send(_ signal: Int32) {
        Glibc.kill(pid, signal)
    }

    /// Waits for the child to end.
    public func termination() async -> Termination {
        await withCheckedContinuation { continuation in
            let finished: Termination? = state.withLock { state in
                if let termination = state.termination { return termination }
                state.waiters.append(continuation)
                return nil
            }
            if let finished { continuation.resume(returning: finished) }
        }
    }

    /// Waits at most `timeout`; nil when the child is still running.
    public func termination(within timeout: Duration) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let termination = state.withLock({ $0.termination }) { return termination }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return state.withLock { $0.termination }
    }

    /// True while the child has not ended.
    public var isRunning: Bool { state.withLock { $0.termination == nil } }

    /// Stops the child if it still runs (SIGKILL) and reaps it.
    public func kill() async {
        if isRunning { send(SIGKILL) }
        _ = await termination()
    }
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public let command: String
    public let termination: ChildProcess.Termination
    public var description: String { "\(command) ended with \(termination)" }
}

/// Runs an executable to completion without blocking a cooperative thread; throws unless it exits 0.
public func runProcess(_ executable: String, _ arguments: [String]) async throws {
    let child = try ChildProcess(executable: executable, arguments: arguments)
    let termination = await child.termination()
    guard termination == .exited(0) else {
        throw ProcessFailure(command: ([executable] + arguments).joined(separator: " "), termination: termination)
    }
}
