// swift-tools-version:6.2
import PackageDescription

/// One list of settings for every first-party target: Swift 6 mode with strict concurrency
/// (the language mode's default) and no warnings tolerated.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .treatAllWarnings(as: .error),
]

/// A service executable: `Services/<folder>`, built on the shared service kit.
func serviceTarget(_ name: String, path: String, extra: [Target.Dependency] = [], documents: [String] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: [
            "ServiceKit", "SharedModel", "Postgres", "Redis", "Migrations",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ] + extra,
        path: "Services/\(path)",
        exclude: ["README.md"] + documents,
        swiftSettings: swiftSettings
    )
}

let package = Package(
    name: "booking-platform",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "booking", targets: ["Booking"]),
        .executable(name: "payments-webhook", targets: ["PaymentsWebhook"]),
        .executable(name: "payout", targets: ["Payout"]),
        .executable(name: "notification", targets: ["Notification"]),
        .executable(name: "provider-simulator", targets: ["ProviderSimulator"]),
        .executable(name: "platform-bench", targets: ["Bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // The shared model: value types only, Foundation only.
        .target(name: "SharedModel", path: "Shared/Model", swiftSettings: swiftSettings),

        // C shims. Only the Postgres and Redis adapters import these.
        .systemLibrary(
            name: "CLibPQ",
            path: "Shared/CLibPQ",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            path: "Shared/CHiredis",
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"])]
        ),

        // Infrastructure adapters: dedicated-thread executors and the pool they share.
        .target(
            name: "ConnectionKit",
            dependencies: ["SharedModel", .product(name: "Metrics", package: "swift-metrics")],
            path: "Shared/ConnectionKit",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ", "ConnectionKit", "SharedModel",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/Postgres",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis", "ConnectionKit", "SharedModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/Redis",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Migrations",
            dependencies: ["Postgres", .product(name: "Logging", package: "swift-log")],
            path: "Shared/Migrations",
            resources: [.copy("SQL")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Messaging",
            dependencies: [
                "SharedModel", "Postgres", "Redis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/Messaging",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceKit",
            dependencies: [
                "SharedModel", "Postgres", "Redis", "Migrations", "Messaging", "WebhookSignatures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/ServiceKit",
            swiftSettings: swiftSettings
        ),

        // The payment provider's HTTP API (Stripe-compatible), for the services that call it.
        .target(
            name: "ProviderAPI",
            dependencies: [
                "ServiceKit", "SharedModel", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Shared/ProviderAPI",
            swiftSettings: swiftSettings
        ),

        // Webhook signatures: Stripe's (verified on the way in) and Standard Webhooks (both ways).
        .target(
            name: "WebhookSignatures",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            path: "Shared/WebhookSignatures",
            swiftSettings: swiftSettings
        ),

        // The four services.
        serviceTarget(
            "Booking", path: "Booking", extra: ["Messaging", .product(name: "Crypto", package: "swift-crypto")], documents: ["openapi.yaml"]),
        serviceTarget(
            "PaymentsWebhook", path: "PaymentsWebhook",
            extra: [
                "Messaging", "WebhookSignatures", "ProviderAPI", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            documents: ["openapi.yaml"]),
        serviceTarget(
            "Payout", path: "Payout",
            extra: ["Messaging", "ProviderAPI", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            documents: ["openapi.yaml"]),
        serviceTarget(
            "Notification", path: "Notification",
            extra: [
                "Messaging", "WebhookSignatures", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            documents: ["openapi.yaml"]),

        // A local Stripe-compatible payment provider for development and end-to-end tests.
        .executableTarget(
            name: "ProviderSimulator",
            dependencies: [
                "ServiceKit", "SharedModel", "WebhookSignatures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/ProviderSimulator",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // Benchmarks of the adapters against the servers' own tools (`scripts/bench`).
        .executableTarget(
            name: "Bench",
            dependencies: [
                "Postgres", "Redis", "Messaging", "Migrations", "SharedModel", "WebhookSignatures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Services/Bench",
            swiftSettings: swiftSettings
        ),

        // Tests.
        .target(
            name: "TestSupport",
            dependencies: [
                "Postgres", "Redis", "Migrations",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceTestSupport",
            dependencies: [
                "ServiceKit", "TestSupport", "Migrations", "Postgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/ServiceTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SharedModelTests", dependencies: ["SharedModel"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BenchTests",
            dependencies: [
                "Bench", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "WebhookSignaturesTests", dependencies: ["WebhookSignatures"], swiftSettings: swiftSettings),
        .testTarget(name: "ConnectionKitTests", dependencies: ["ConnectionKit"], swiftSettings: swiftSettings),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MessagingTests", dependencies: ["Messaging", "SharedModel", "Postgres", "Redis", "Migrations", "TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(name: "MigrationsTests", dependencies: ["Migrations", "Postgres", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ServiceKitTests",
            dependencies: [
                "ServiceKit", "SharedModel", "Redis", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BookingTests",
            dependencies: [
                "Booking", "ServiceKit", "SharedModel", "Messaging", "Postgres", "Redis", "TestSupport", "ServiceTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PaymentsWebhookTests",
            dependencies: [
                "PaymentsWebhook", "ProviderSimulator", "ServiceKit", "SharedModel", "Messaging", "Postgres", "Redis", "TestSupport",
                "ServiceTestSupport",
                "WebhookSignatures", .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NotificationTests",
            dependencies: [
                "Notification", "ServiceKit", "SharedModel", "Messaging", "Postgres", "Redis", "TestSupport", "ServiceTestSupport",
                "WebhookSignatures", .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PayoutTests",
            dependencies: [
                "Payout", "ProviderSimulator", "ProviderAPI", "ServiceKit", "SharedModel", "Messaging", "Postgres", "Redis", "TestSupport",
                "ServiceTestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProviderSimulatorTests",
            dependencies: [
                "ProviderSimulator", "ServiceKit", "WebhookSignatures",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "TestSupport", "Postgres", "Redis", "SharedModel", "Messaging", .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
