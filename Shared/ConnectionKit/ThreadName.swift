#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The name the operating system shows for a thread (`top -H`, `perf`, `/proc/<pid>/task/*/comm`).
///
/// Foundation's `Thread.name` on Linux does not reach the OS thread when set before `start()`, and
/// Linux keeps at most 15 bytes of a name (`pthread_setname_np` refuses longer ones outright). The
/// dedicated threads (connections, shared connections) call ``setCurrent(_:)`` first thing, so
/// profiles and the bench's per-thread CPU tell them from Swift's cooperative pool.
@usableFromInline
package enum ThreadName {
    /// The most bytes Linux keeps of a thread's name.
    package static let limit = 15

    /// `name` as the OS will hold it: ASCII, and when longer than ``limit`` its start and its end
    /// (where the index is) joined by `~`, e.g. `booking-consumers-shared-0` -> `booking-c~red-0`.
    package static func shortened(_ name: String) -> String {
        let ascii = String(String.UnicodeScalarView(name.unicodeScalars.map { $0.isASCII ? $0 : "?" }))
        guard ascii.utf8.count > limit else { return ascii }
        let tail = 5
        return String(ascii.prefix(limit - 1 - tail)) + "~" + String(ascii.suffix(tail))
    }

    /// Names the calling thread ``shortened(_:)`` `name`; a refusal is ignored (the name only helps
    /// people read profiles). Linux only (Glibc does not export `pthread_setname_np` to Swift; the
    /// calling thread's `comm` file is the same setting).
    @usableFromInline
    package static func setCurrent(_ name: String) {
        #if os(Linux)
            guard let file = fopen("/proc/thread-self/comm", "w") else { return }
            _ = fputs(shortened(name), file)
            fclose(file)
        #endif
    }

    /// The calling thread's name as the OS holds it (empty where unknown).
    package static func current() -> String {
        #if os(Linux)
            guard let file = fopen("/proc/thread-self/comm", "r") else { return "" }
            defer { fclose(file) }
            var buffer = [CChar](repeating: 0, count: 64)
            guard fgets(&buffer, Int32(buffer.count), file) != nil else { return "" }
            return String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #else
            return ""
        #endif
    }
}
