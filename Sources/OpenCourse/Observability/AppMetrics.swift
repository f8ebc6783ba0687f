import CoreMetrics
import Foundation
import Metrics
import Prometheus
import Synchronization

/// The service's metrics, kept in a registry of its own (not the process-wide MetricsSystem) so
/// that each application instance, in tests too, exposes exactly what it measured.
public final class AppMetrics: Sendable {
    private struct RequestKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let requests = Mutex<[RequestKey: RequestSeries]>([:])
    private let bcryptHashes: CoreMetrics.Counter
    private let bcryptVerifications: CoreMetrics.Counter
    private let bcryptPaired: CoreMetrics.Counter
    private let fastPathResponses: CoreMetrics.Counter
    private let poolInUse: CoreMetrics.Gauge
    private let poolWaiting: CoreMetrics.Gauge
    private let inUse = Atomic<Int>(0)
    private let waiting = Atomic<Int>(0)

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        self.factory = factory
        bcryptHashes = CoreMetrics.Counter(label: "opencourse_bcrypt_operations_total", dimensions: [("operation", "hash")], factory: factory)
        bcryptVerifications = CoreMetrics.Counter(label: "opencourse_bcrypt_operations_total", dimensions: [("operation", "verify")], factory: factory)
        bcryptPaired = CoreMetrics.Counter(label: "opencourse_bcrypt_paired_operations_total", factory: factory)
        fastPathResponses = CoreMetrics.Counter(label: "opencourse_http_fast_path_responses_total", factory: factory)
        poolInUse = CoreMetrics.Gauge(label: "opencourse_db_pool_connections_in_use", factory: factory)
        poolWaiting = CoreMetrics.Gauge(label: "opencourse_db_pool_requests_waiting", factory: factory)
        poolInUse.record(0)
        poolWaiting.record(0)
    }

    /// One finished request; `route` is the route pattern, never the raw path, to bound cardinality.
    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        requestSeries(route: route, method: method, status: status).record(duration)
    }

    /// The series of one route, method and status, created when first asked for.
    func requestSeries(route: String, method: String, status: Int) -> RequestSeries {
        let key = RequestKey(route: route, method: method, status: status)
        return requests.withLock { cache in
            if let existing = cache[key] { return existing }
            let dimensions = [("route", route), ("method", method), ("status", String(status))]
            let created = RequestSeries(
                count: CoreMetrics.Counter(label: "http_requests_total", dimensions: dimensions, factory: factory),
                duration: Metrics.Timer(label: "http_request_duration_seconds", dimensions: dimensions, factory: factory)
            )
            cache[key] = created
            return created
        }
    }

    /// Of the requests in `http_requests_total`, one answered by `FastPathResponder`.
    func recordFastPathResponse() {
        fastPathResponses.increment()
    }

    func recordBcrypt(hash: Bool) {
        (hash ? bcryptHashes : bcryptVerifications).increment()
    }

    /// Two of the operations above ran interleaved on one thread.
    func recordBcryptPair() {
        bcryptPaired.increment(by: 2)
    }

    /// Pool accounting around each leased PostgreSQL connection.
    func connectionRequested() { poolWaiting.record(waiting.add(1, ordering: .relaxed).newValue) }
    func connectionLeased() {
        poolWaiting.record(waiting.subtract(1, ordering: .relaxed).newValue)
        poolInUse.record(inUse.add(1, ordering: .relaxed).newValue)
    }
    func connectionNotLeased() { poolWaiting.record(waiting.subtract(1, ordering: .relaxed).newValue) }
    func connectionReturned() { poolInUse.record(inUse.subtract(1, ordering: .relaxed).newValue) }

    /// Prometheus text exposition of everything above.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}

/// The count and durations of the requests of one route, method and status.
final class RequestSeries: Sendable {
    private let count: CoreMetrics.Counter
    private let duration: Metrics.Timer

    init(count: CoreMetrics.Counter, duration: Metrics.Timer) {
        self.count = count
        self.duration = duration
    }

    func record(_ duration: Duration) {
        count.increment()
        self.duration.record(duration: duration)
    }
}

/// A series its caller names once, for the fast path's few fixed routes: looking it up by its
/// strings under the registry's lock was 1.4% of a fast answer. Still made only when first
/// counted, so `/metrics` lists the same series whichever path answered. Kept as the address of
/// a retained object in an `Atomic<UInt>`: `AtomicLazyReference.load` is a generic call into the
/// runtime (1% of a fast answer), an atomic load is one instruction.
final class LazyRequestSeries: Sendable {
    private let metrics: AppMetrics
    private let route: String
    private let method: String
    private let status: Int
    private let address = Atomic<UInt>(0)

    init(metrics: AppMetrics, route: String, method: String, status: Int) {
        (self.metrics, self.route, self.method, self.status) = (metrics, route, method, status)
    }

    deinit {
        if let pointer = UnsafeRawPointer(bitPattern: address.load(ordering: .acquiring)) {
            Unmanaged<RequestSeries>.fromOpaque(pointer).release()
        }
    }

    func record(_ duration: Duration) {
        series.record(duration)
    }

    private var series: RequestSeries {
        if let pointer = UnsafeRawPointer(bitPattern: address.load(ordering: .acquiring)) {
            return Unmanaged<RequestSeries>.fromOpaque(pointer).takeUnretainedValue()
        }
        let series = metrics.requestSeries(route: route, method: method, status: status)
        let retained = Unmanaged.passRetained(series)
        let desired = UInt(bitPattern: retained.toOpaque())
        if !address.compareExchange(expected: 0, desired: desired, ordering: .acquiringAndReleasing).exchanged {
            // Another thread stored the same series (the registry made it once) first.
            retained.release()
        }
        return series
    }
}
