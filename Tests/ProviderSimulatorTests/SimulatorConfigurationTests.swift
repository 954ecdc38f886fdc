import ServiceKit
import Testing

@testable import ProviderSimulator

@Suite("Configuration")
struct SimulatorConfigurationTests {
    @Test("defaults, with the required API key")
    func defaults() throws {
        let configuration = try SimulatorConfiguration(reader: ConfigurationReader(environment: ["PROVIDER_API_KEY": "sk_test_1"]))
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8090)
        #expect(configuration.apiKey == "sk_test_1")
        #expect(configuration.webhookURL == nil)
        #expect(configuration.webhookAttempts == 5)
        #expect(configuration.webhookRetryDelay == .milliseconds(200))
    }

    @Test("a missing or empty API key is the one-line error the executable prints")
    func missingKey() {
        for environment in [[:], ["PROVIDER_API_KEY": ""]] {
            #expect(throws: ConfigurationError(name: "PROVIDER_API_KEY", reason: "is required")) {
                try SimulatorConfiguration(reader: ConfigurationReader(environment: environment))
            }
        }
        #expect(ConfigurationError(name: "PROVIDER_API_KEY", reason: "is required").description == "PROVIDER_API_KEY is required")
    }

    @Test("every setting is a flag whose help names its environment variable")
    func help() throws {
        #expect(try SettingOptions.undocumentedNames(of: SimulatorOptions.self) == [])
        #expect(
            try SettingOptions.names(of: SimulatorOptions.self) == [
                "HOST", "PORT", "PROVIDER_API_KEY", "WEBHOOK_URL", "STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRETS", "WEBHOOK_ATTEMPTS", "LOG_LEVEL",
            ])
    }

    @Test("flags win over the environment; an empty flag counts as unset")
    func flagsWin() throws {
        let options = try SimulatorOptions.parse(["--port", "9191", "--provider-api-key", "sk_flag", "--host", ""])
        let configuration = try SimulatorConfiguration(
            reader: ConfigurationReader(
                flags: SettingOptions.values(of: options),
                environment: ["PORT": "9000", "PROVIDER_API_KEY": "sk_env", "HOST": "0.0.0.0", "WEBHOOK_ATTEMPTS": "2"]))
        #expect(configuration.port == 9191)
        #expect(configuration.apiKey == "sk_flag")
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.webhookAttempts == 2)
    }

    @Test("the webhook secret is required with a URL and falls back to the first of STRIPE_WEBHOOK_SECRETS")
    func webhookSecret() throws {
        let base = ["PROVIDER_API_KEY": "sk", "WEBHOOK_URL": "http://127.0.0.1:8081/v1/webhooks/stripe"]
        #expect(throws: ConfigurationError.self) { try SimulatorConfiguration(reader: ConfigurationReader(environment: base)) }
        let rotated = try SimulatorConfiguration(
            reader: ConfigurationReader(environment: base.merging(["STRIPE_WEBHOOK_SECRETS": "whsec_new, whsec_old"]) { $1 }))
        #expect(rotated.webhookSecret == "whsec_new")
        let explicit = try SimulatorConfiguration(
            reader: ConfigurationReader(
                environment: base.merging(["STRIPE_WEBHOOK_SECRET": "whsec_one", "STRIPE_WEBHOOK_SECRETS": "whsec_new"]) { $1 }))
        #expect(explicit.webhookSecret == "whsec_one")
    }

    @Test(
        "invalid values name their setting",
        arguments: [
            ("PORT", "http"), ("PORT", "70000"), ("WEBHOOK_ATTEMPTS", "0"), ("WEBHOOK_URL", "ftp://x"), ("LOG_LEVEL", "loud"),
        ])
    func invalid(name: String, value: String) {
        let environment = ["PROVIDER_API_KEY": "sk", "STRIPE_WEBHOOK_SECRET": "whsec_x", name: value]
        #expect {
            try SimulatorConfiguration(reader: ConfigurationReader(environment: environment))
        } throws: { error in
            (error as? ConfigurationError)?.name == name
        }
    }
}
