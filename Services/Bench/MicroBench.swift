import Foundation

/// Timing for the benchmarks that run without servers (`platform-bench json`, `statements`): each
/// piece of work is run `iterations` times per round, and the fastest of `rounds` rounds is reported
/// in nanoseconds per call, on one thread.
struct MicroBench {
    let iterations: Int
    let rounds: Int
    private(set) var results: [(name: String, nanoseconds: Double)] = []

    init(iterations: Int, rounds: Int) {
        self.iterations = iterations
        self.rounds = rounds
    }

    /// Measures `work` and writes its line of the report. `work` returns a number derived from its
    /// result; their sum is reported, so the optimizer cannot drop the work.
    mutating func measure(_ name: String, _ work: () throws -> Int) rethrows {
        var best = Double.infinity
        var sink = 0
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for _ in 0..<iterations { sink &+= try work() }
            let elapsed = ContinuousClock.now - start
            best = min(best, elapsed.nanoseconds / Double(iterations))
        }
        results.append((name, best))
        Self.write("\(name): \(String(format: "%.0f", best)) ns (checksum \(sink))")
    }

    /// The machine-readable lines `<prefix>_<name>_ns=<nanoseconds>`, one per measurement.
    func summary(prefix: String) -> String {
        results.map { "\(prefix)_\($0.name)_ns=\(Int($0.nanoseconds.rounded()))" }.joined(separator: "\n")
    }

    /// Writes `line` to standard output (the report, as every benchmark writes its own).
    static func write(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

extension Duration {
    fileprivate var nanoseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}
