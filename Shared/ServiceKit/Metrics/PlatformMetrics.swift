import Metrics
import Prometheus

/// The process's Prometheus registry, installed as the swift-metrics backend once per process.
public enum PlatformMetrics {
    /// Every metric of the process, served at `/metrics`.
    public static let registry = PrometheusCollectorRegistry()

    private static let installed: Bool = {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
        return true
    }()

    /// Installs the registry as the metrics backend. Idempotent and thread-safe.
    public static func bootstrap() {
        _ = installed
    }

    /// The registry in Prometheus' text exposition format.
    public static func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
