import Logging
import ServiceLifecycle

/// Runs `work` every `interval` until graceful shutdown (which also cuts the sleep short) or
/// cancellation. A failed run is logged at warning with `message` and tried again at the next tick:
/// the loop of every poller, purger and reconciler.
package func repeatUntilShutdown(
    every interval: Duration, logger: Logger, failure message: Logger.Message, metadata: Logger.Metadata = [:],
    _ work: @escaping @Sendable () async throws -> Void
) async {
    await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            do {
                try await work()
            } catch {
                var metadata = metadata
                metadata["error"] = "\(error)"
                logger.warning(message, metadata: metadata)
            }
            try? await Task.sleep(for: interval)
        }
    }
}
