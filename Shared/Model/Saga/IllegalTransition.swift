import Foundation

/// A saga transition the saga table does not allow. Thrown instead of silently ignoring it, so a
/// handler that would corrupt a booking fails loudly (and its message is retried or dead-lettered).
public struct IllegalTransition: Error, Hashable, Sendable, CustomStringConvertible {
    /// The state the saga was in.
    public let from: SagaState
    /// The state that was requested.
    public let to: SagaState

    /// Records a refused transition.
    public init(from: SagaState, to: SagaState) {
        self.from = from
        self.to = to
    }

    /// `illegal saga transition confirmed -> expired`.
    public var description: String { "illegal saga transition \(from.rawValue) -> \(to.rawValue)" }
}
