import ArgumentParser

/// Settings as command-line options: each is declared once, as `@Option(help: "... (NAME).") var name: String?`
/// in a `ParsableArguments` type, and read as `--name` or from the environment variable `NAME` (the
/// property name in upper snake case: `holdTTL` is `--hold-ttl` and `HOLD_TTL`, `databaseURL` is
/// `--database-url` and `DATABASE_URL`). Options stay strings so a bad flag and a bad environment
/// value fail alike, through ``ConfigurationReader``: one line naming the setting, exit status 2.
/// `@OptionGroup`s are followed, so a service's options can include ``ServiceOptions``.
public enum SettingOptions {
    /// The values of `options` (parsed) by environment name; `nil` for an option not given.
    public static func values(of options: some ParsableArguments) -> [String: String?] {
        var values: [String: String?] = [:]
        for child in Mirror(reflecting: options).children {
            guard let label = child.label, label.hasPrefix("_") else { continue }
            if let option = child.value as? Option<String?> {
                values[environmentName(ofProperty: String(label.dropFirst()))] = .some(option.wrappedValue)
            } else if let group = child.value as? any SettingGroup {
                values.merge(group.settingValues) { _, nested in nested }
            } else {
                assertionFailure("\(label): a setting is declared as `@Option var \(label.dropFirst()): String?`")
            }
        }
        return values
    }

    /// The environment names `Options` declares, in no particular order.
    public static func names<Options: ParsableArguments>(of _: Options.Type) throws -> Set<String> {
        Set(values(of: try Options.parse([])).keys)
    }

    /// The environment names `Options` declares that its `--help` does not mention; empty when every
    /// option's help names its variable. Tests assert this for each executable.
    public static func undocumentedNames<Options: ParsableArguments>(of type: Options.Type) throws -> [String] {
        let help = Options.helpMessage(columns: 400)
        return try names(of: type).filter { name in !["(\(name))", "(\(name),", "(\(name);"].contains { help.contains($0) } }.sorted()
    }

    /// `holdTTL` -> `HOLD_TTL`: swift-argument-parser's long name (`hold-ttl`) in upper snake case.
    static func environmentName(ofProperty name: String) -> String {
        var result = ""
        let characters = Array(name)
        for (index, character) in characters.enumerated() {
            if character.isUppercase, index > 0 {
                let previousIsLower = !characters[index - 1].isUppercase
                let nextIsLower = index + 1 < characters.count && characters[index + 1].isLowercase
                if previousIsLower || nextIsLower { result.append("_") }
            }
            result += character.uppercased()
        }
        return result
    }
}

/// An `@OptionGroup` of settings, followed by ``SettingOptions/values(of:)``.
protocol SettingGroup {
    var settingValues: [String: String?] { get }
}

extension OptionGroup: SettingGroup {
    var settingValues: [String: String?] { SettingOptions.values(of: wrappedValue) }
}
