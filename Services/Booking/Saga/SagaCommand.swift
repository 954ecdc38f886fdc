import ArgumentParser
import Foundation
import Messaging
import ServiceKit
import SharedModel

/// `booking saga list | resume`: the saga admin API from the command line, JSON on standard output.
struct SagaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "saga",
        abstract: "List sagas by state, or resume a compensation_failed one.",
        subcommands: [List.self, Resume.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sagas, most recently changed first, with every state's count.")
        @OptionGroup var database: DatabaseOption
        @Option(help: "Only sagas in this state, e.g. compensation_failed.") var state: SagaState?
        @Flag(help: "Only sagas past their deadline.") var overdue = false
        @Option var limit: Int = 50
        @Option var cursor: String?

        func run() async throws {
            let position = try cursor.map { text in
                guard let position = ListCursor(text) else { throw ValidationError("--cursor is not one this command printed") }
                return position
            }
            try await database.withPostgres(label: "saga") { postgres in
                let operations = SagaOperations(postgres: postgres, runner: SagaRunner(decider: SagaDecider()))
                try output(try await operations.list(.init(state: state, overdue: overdue), cursor: position, limit: limit))
            }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume a compensation_failed saga: refund through an existing refund at the provider, else a new one.")
        @OptionGroup var database: DatabaseOption
        @OptionGroup var operatorOption: OperatorOption
        @Option(help: "How long the resumed refund may stay unconfirmed, e.g. 1h (REFUND_PENDING_BOUND).") var refundPendingBound: String?
        @Argument(help: "The booking whose saga to resume.") var bookingID: UUID

        func run() async throws {
            let bound = ServiceLauncher.configuration {
                try ConfigurationReader(flags: ["REFUND_PENDING_BOUND": refundPendingBound]).duration(
                    "REFUND_PENDING_BOUND", default: SagaDecider.Policy.defaultRefundPendingBound, in: .seconds(1)...(.seconds(7 * 86_400)))
            }
            let outcome = try await database.withPostgres(label: "saga") { postgres in
                try await SagaOperations(postgres: postgres, runner: SagaRunner(decider: SagaDecider(policy: .init(refundPendingBound: bound))))
                    .resume(
                        BookingID(bookingID), operatorName: operatorOption.value,
                        audit: operatorOption.audit(
                            command: "booking saga resume", action: "saga.resumed", targetID: bookingID.lowercasedString, outcome: "resumed"))
            }
            switch outcome {
            case .resumed(let attempt, let key):
                try output(ResumeAnswer(outcome: "resumed", state: SagaState.refundPending.rawValue, attempt: attempt, idempotencyKey: key))
            case .notFound:
                throw ValidationError("no saga for booking \(bookingID.lowercasedString)")
            case .notResumable(let state):
                throw ValidationError("only a compensation_failed saga can be resumed; this one is \(state.rawValue)")
            }
        }
    }

    struct ResumeAnswer: Encodable {
        let outcome: String
        let state: String
        let attempt: Int
        let idempotencyKey: String

        private enum CodingKeys: String, CodingKey {
            case outcome, state, attempt
            case idempotencyKey = "idempotency_key"
        }
    }
}

extension SagaState: ExpressibleByArgument {}
