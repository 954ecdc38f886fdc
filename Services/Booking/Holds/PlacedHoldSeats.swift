import SharedModel
import Synchronization

/// The seats of the holds one booking instance placed lately, so that converting such a hold need not
/// read its record from Redis first. A hold's seats never change and its id is never reused, so what is
/// remembered cannot go stale; it decides nothing (Redis still answers whether the hold is live and
/// whose it is), and a hold placed by another instance, or forgotten, is read from its record.
///
/// Bounded: two generations of at most `capacity / 2` holds each; when the newer one is full, the older
/// one is dropped and the newer one takes its place. A hold is remembered for at least `capacity / 2`
/// later holds, which at thousands of holds a second is longer than a customer takes to book.
final class PlacedHoldSeats: Sendable {
    private struct Generations {
        var newer: [HoldID: [SeatID]] = [:]
        var older: [HoldID: [SeatID]] = [:]
    }
    private let generations = Mutex(Generations())
    private let generationSize: Int

    /// `capacity` 0 remembers nothing.
    init(capacity: Int) {
        generationSize = max(0, capacity / 2)
    }

    func remember(_ hold: HoldID, seats: [SeatID]) {
        guard generationSize > 0 else { return }
        generations.withLock { generations in
            if generations.newer.count >= generationSize {
                generations.older = generations.newer
                generations.newer = [:]
                generations.newer.reserveCapacity(generationSize)
            }
            generations.newer[hold] = seats
        }
    }

    func seats(of hold: HoldID) -> [SeatID]? {
        generations.withLock { $0.newer[hold] ?? $0.older[hold] }
    }

    /// How many holds are remembered (for tests).
    var count: Int {
        generations.withLock { $0.newer.count + $0.older.count }
    }
}
