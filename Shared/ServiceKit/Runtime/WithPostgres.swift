import Logging
import Postgres

/// Runs `body` with a Postgres client of `configuration`, then shuts the client down and waits until it
/// has, whether `body` returned or threw: a command's connections are closed before it exits.
public func withPostgres<Value>(
    configuration: PostgresClient.Configuration, logger: Logger, _ body: (PostgresClient) async throws -> Value
) async throws -> Value {
    let client = PostgresClient(configuration: configuration, logger: logger)
    let value: Value
    do {
        value = try await body(client)
    } catch {
        await client.shutdown()
        throw error
    }
    await client.shutdown()
    return value
}
