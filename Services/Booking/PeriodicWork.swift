import Logging
import ServiceLifecycle

/// Runs `work` every `interval` until graceful shutdown (which also cuts the sleep short) or
/// cancellation. A failed run is logged with `message` and tried again at the next tick.
func repeatUntilShutdown(
    every interval: Duration, logger: Logger, failure message: Logger.Message, _ work: @escaping @Sendable () async throws -> Void
) async {
    await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            do {
                try await work()
            } catch {
                logger.warning(message, metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
