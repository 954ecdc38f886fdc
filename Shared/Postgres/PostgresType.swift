/// A Postgres data type by its object id, as sent with bound parameters and read from result columns.
public struct PostgresType: Hashable, Sendable, CustomStringConvertible {
    public let oid: UInt32
    /// The oid of the one-dimensional array of this type (0 when there is none).
    public let arrayOID: UInt32

    public init(oid: UInt32, arrayOID: UInt32 = 0) {
        self.oid = oid
        self.arrayOID = arrayOID
    }

    public var description: String { "oid \(oid)" }

    /// Types are the same when their oids are; the array oid is a property of the type, not its identity.
    public static func == (lhs: PostgresType, rhs: PostgresType) -> Bool { lhs.oid == rhs.oid }
    public func hash(into hasher: inout Hasher) { hasher.combine(oid) }

    public static let bool = PostgresType(oid: 16, arrayOID: 1000)
    public static let bytea = PostgresType(oid: 17, arrayOID: 1001)
    public static let name = PostgresType(oid: 19, arrayOID: 1003)
    public static let int8 = PostgresType(oid: 20, arrayOID: 1016)
    public static let int2 = PostgresType(oid: 21, arrayOID: 1005)
    public static let int4 = PostgresType(oid: 23, arrayOID: 1007)
    public static let text = PostgresType(oid: 25, arrayOID: 1009)
    public static let oidType = PostgresType(oid: 26, arrayOID: 1028)
    public static let json = PostgresType(oid: 114, arrayOID: 199)
    public static let float8 = PostgresType(oid: 701, arrayOID: 1022)
    public static let bpchar = PostgresType(oid: 1042, arrayOID: 1014)
    public static let varchar = PostgresType(oid: 1043, arrayOID: 1015)
    public static let timestamp = PostgresType(oid: 1114, arrayOID: 1115)
    public static let timestamptz = PostgresType(oid: 1184, arrayOID: 1185)
    public static let numeric = PostgresType(oid: 1700, arrayOID: 1231)
    public static let uuid = PostgresType(oid: 2950, arrayOID: 2951)
    public static let jsonb = PostgresType(oid: 3802, arrayOID: 3807)
    /// Sent for a NULL whose type the server should infer.
    public static let unspecified = PostgresType(oid: 0)

    /// Types whose binary form is their UTF-8 text.
    static let textual: Set<UInt32> = [text.oid, varchar.oid, bpchar.oid, name.oid, json.oid, 705 /* unknown */]
}

/// One bound parameter in Postgres' binary wire format (`nil` bytes is SQL NULL).
public struct PostgresValue: Sendable {
    public var type: PostgresType
    public var bytes: [UInt8]?

    public init(type: PostgresType, bytes: [UInt8]?) {
        self.type = type
        self.bytes = bytes
    }

    /// SQL NULL of the given type.
    public static func null(_ type: PostgresType = .unspecified) -> PostgresValue {
        PostgresValue(type: type, bytes: nil)
    }
}
