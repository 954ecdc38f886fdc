/// One page of a cursor-paginated list as every API writes it: `{"<items>": [...], "next_cursor":
/// "..." | null}`, e.g. `{"bookings": [...], "next_cursor": null}`. `next_cursor` is always present
/// (null on the last page).
public struct ListPage<Item: Encodable & Sendable>: Encodable, Sendable {
    public let itemsKey: String
    public let items: [Item]
    public let nextCursor: String?

    public init(_ itemsKey: String, items: [Item], nextCursor: String?) {
        self.itemsKey = itemsKey
        self.items = items
        self.nextCursor = nextCursor
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(items, forKey: Key(itemsKey))
        try container.encode(nextCursor, forKey: Key("next_cursor"))
    }

    private struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
