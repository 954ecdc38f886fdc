/// A map of at most `capacity` entries that forgets the least recently used entry to make room for a
/// new one. Reading, writing, removing and evicting are O(1): a dictionary from key to a slot of an
/// array, and the slots chained from newest to oldest by their indices (a doubly linked list without
/// a reference per node).
struct LeastRecentlyUsedMap<Key: Hashable, Value> {
    private struct Node {
        var key: Key
        var value: Value
        /// The next newer and older slots; `none` at either end.
        var newer: Int
        var older: Int
    }

    private static var none: Int { -1 }

    /// The most entries kept.
    let capacity: Int
    private var nodes: [Node] = []
    private var slots: [Key: Int] = [:]
    private var freeSlots: [Int] = []
    private var newest = Self.none
    private var oldest = Self.none

    /// A map that keeps at most `capacity` entries (at least 1).
    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// How many entries are kept.
    var count: Int { slots.count }

    /// The value for `key`, which becomes the most recently used entry.
    mutating func value(for key: Key) -> Value? {
        guard let slot = slots[key] else { return nil }
        moveToNewest(slot)
        return nodes[slot].value
    }

    /// Sets the value for `key`, which becomes the most recently used entry. When that adds an entry to
    /// a full map, the least recently used entry is forgotten and its key returned.
    @discardableResult
    mutating func set(_ value: Value, for key: Key) -> Key? {
        if let slot = slots[key] {
            nodes[slot].value = value
            moveToNewest(slot)
            return nil
        }
        var evicted: Key?
        if slots.count >= capacity, oldest != Self.none {
            let key = nodes[oldest].key
            removeValue(for: key)
            evicted = key
        }
        let node = Node(key: key, value: value, newer: Self.none, older: Self.none)
        let slot: Int
        if let free = freeSlots.popLast() {
            nodes[free] = node
            slot = free
        } else {
            nodes.append(node)
            slot = nodes.count - 1
        }
        slots[key] = slot
        linkAsNewest(slot)
        return evicted
    }

    /// Forgets `key`.
    mutating func removeValue(for key: Key) {
        guard let slot = slots.removeValue(forKey: key) else { return }
        unlink(slot)
        freeSlots.append(slot)
    }

    /// The keys from the most to the least recently used (for tests).
    var keysByRecency: [Key] {
        var keys: [Key] = []
        var slot = newest
        while slot != Self.none {
            keys.append(nodes[slot].key)
            slot = nodes[slot].older
        }
        return keys
    }

    private mutating func moveToNewest(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        linkAsNewest(slot)
    }

    private mutating func linkAsNewest(_ slot: Int) {
        nodes[slot].newer = Self.none
        nodes[slot].older = newest
        if newest != Self.none { nodes[newest].newer = slot }
        newest = slot
        if oldest == Self.none { oldest = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (nodes[slot].newer, nodes[slot].older)
        if newer != Self.none { nodes[newer].older = older } else { newest = older }
        if older != Self.none { nodes[older].newer = newer } else { oldest = newer }
        nodes[slot].newer = Self.none
        nodes[slot].older = Self.none
    }
}
