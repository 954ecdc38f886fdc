import Foundation

/// A serial executor backed by one dedicated OS thread.
///
/// Blocking C clients (libpq, hiredis) must never run on Swift's cooperative pool, which is only as
/// wide as the core count: two blocked calls would stall every request handler of the process. An
/// actor that returns this executor from `unownedExecutor` runs every isolated method on its own
/// thread, so a call that blocks for a second suspends only the awaiting task, never a pool thread.
///
/// Jobs run in the order they were enqueued. After ``shutdown()`` the thread drains the jobs it already
/// has and exits; jobs enqueued later still run (on the caller's thread), so no continuation is lost.
package final class DedicatedThreadExecutor: SerialExecutor, @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [UnownedJob] = []
    private var running = true
    private var threadExited = false

    /// Starts the thread. `name` shows in debuggers, `top -H` and profiles (``ThreadName``).
    package init(name: String) {
        let thread = Thread { [self] in
            ThreadName.setCurrent(name)
            self.loop()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        if running {
            queue.append(job)
            condition.signal()
            condition.unlock()
        } else {
            condition.unlock()
            // The thread is gone; running the job here is the only way not to lose it.
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }

    package func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the thread finish the jobs it has and exit. Safe to call more than once.
    package func shutdown() {
        condition.lock()
        running = false
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        var batch: [UnownedJob] = []
        while true {
            condition.lock()
            while queue.isEmpty && running {
                condition.wait()
            }
            if queue.isEmpty && !running {
                threadExited = true
                condition.unlock()
                return
            }
            swap(&batch, &queue)
            condition.unlock()
            for job in batch {
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
