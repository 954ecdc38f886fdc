import Foundation

/// One numbered migration of the product's single, ordered sequence.
///
/// Files are named `NNNN_<owner>_<name>.sql`: `NNNN` orders the whole product, `<owner>` is the
/// service whose schema the migration changes (`platform` for shared set-up), and `<name>` says what it
/// does. A migration never changes once applied: the migrator records a checksum and refuses to run
/// against a database whose applied migration differs from the file.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let owner: String
    public let name: String
    public let sql: String

    /// The owners a migration may name.
    public static let owners: Set<String> = ["platform", "messaging", "booking", "payments", "notification", "payout"]

    public init(version: Int, owner: String, name: String, sql: String) {
        self.version = version
        self.owner = owner
        self.name = name
        self.sql = sql
    }

    /// Parses `NNNN_owner_name.sql`.
    init(fileName: String, sql: String) throws(MigrationError) {
        guard fileName.hasSuffix(".sql") else { throw .invalidFileName(fileName) }
        let stem = fileName.dropLast(4)
        let parts = stem.split(separator: "_", maxSplits: 2)
        guard parts.count == 3, parts[0].count == 4, let version = Int(parts[0]), version > 0,
            Migration.owners.contains(String(parts[1])), !parts[2].isEmpty
        else { throw .invalidFileName(fileName) }
        self.init(version: version, owner: String(parts[1]), name: String(parts[2]), sql: sql)
    }

    /// Every migration shipped with this build, in order.
    public static func bundled() throws(MigrationError) -> [Migration] {
        guard let directory = Bundle.module.url(forResource: "SQL", withExtension: nil) else {
            throw .missingResources
        }
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        } catch {
            throw .missingResources
        }
        var migrations: [Migration] = []
        for file in files where file.pathExtension == "sql" {
            guard let sql = try? String(contentsOf: file, encoding: .utf8) else { throw .unreadable(file.lastPathComponent) }
            migrations.append(try Migration(fileName: file.lastPathComponent, sql: sql))
        }
        return try ordered(migrations)
    }

    /// Sorts by version and refuses duplicate versions.
    static func ordered(_ migrations: [Migration]) throws(MigrationError) -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw .duplicateVersion(next.version)
        }
        return sorted
    }
}

/// Why migrating stopped.
public enum MigrationError: Error, Sendable, CustomStringConvertible, Equatable {
    case invalidFileName(String)
    case duplicateVersion(Int)
    case missingResources
    case unreadable(String)
    /// An applied migration's file changed since it was applied.
    case checksumMismatch(version: Int, name: String)
    /// The database has a migration this build does not know (a newer build applied it).
    case unknownAppliedVersion(Int)

    public var description: String {
        switch self {
        case .invalidFileName(let name): "migration file \(name) is not named NNNN_<owner>_<name>.sql with a known owner"
        case .duplicateVersion(let version): "two migrations share version \(version)"
        case .missingResources: "the migration files are missing from this build"
        case .unreadable(let name): "migration file \(name) is not readable UTF-8"
        case .checksumMismatch(let version, let name): "migration \(version) (\(name)) changed after it was applied"
        case .unknownAppliedVersion(let version): "the database has migration \(version), which this build does not know; deploy a newer build"
        }
    }
}
