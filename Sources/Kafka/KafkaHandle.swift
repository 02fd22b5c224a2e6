import CRdKafka
import Logging
import Synchronization

/// One librdkafka client (`rd_kafka_t`) and the context its callbacks use.
///
/// Settings are applied in order: the role's defaults, then `properties` verbatim (sorted by
/// name), so anything in `[kafka.properties]` overrides a Vigil default. `destroy()` runs once;
/// the context is released only after `rd_kafka_destroy` returns, when no callback can run.
final class KafkaHandle: Sendable {
    /// The `rd_kafka_t`. librdkafka handles are thread-safe; the pointer never changes.
    /// (`OpaquePointer` is not `Sendable`, hence the wrapper below.)
    var pointer: OpaquePointer { raw.pointer }
    let context: KafkaClientContext
    /// The bootstrap list in effect, for error messages.
    let bootstrap: String
    private let raw: RawHandle
    private let destroyed = Atomic<Bool>(false)

    init(
        type: rd_kafka_type_t, brokers: String?, defaults: [(String, String)], properties: [String: String],
        context: KafkaClientContext, deliveryReports: Bool = false
    ) throws {
        var settings: [(String, String)] = []
        if let brokers { settings.append(("bootstrap.servers", brokers)) }
        settings += defaults.filter { properties[$0.0] == nil }
        settings += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        self.bootstrap = properties["bootstrap.servers"] ?? brokers ?? ""
        self.context = context

        let conf = try Self.makeConf(settings)
        let retained = Unmanaged.passRetained(context)
        rd_kafka_conf_set_opaque(conf, retained.toOpaque())
        rd_kafka_conf_set_log_cb(conf, KafkaCallbacks.log)
        rd_kafka_conf_set_error_cb(conf, KafkaCallbacks.error)
        if deliveryReports {
            rd_kafka_conf_set_dr_msg_cb(conf, KafkaCallbacks.delivery)
        }
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)  // not taken over on failure
            retained.release()
            throw KafkaError(.invalidConfiguration, "cannot create kafka client: \(String(cBuffer: errstr)); check [kafka.properties]")
        }
        self.raw = RawHandle(pointer: rk, retainedContext: retained)
    }

    var isDestroyed: Bool { destroyed.load(ordering: .acquiring) }

    /// Destroys the client (first call only). Callers must have stopped using `pointer`.
    func destroy() {
        guard destroyed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        rd_kafka_destroy(raw.pointer)
        raw.retainedContext.release()
    }

    deinit { destroy() }

    private static func makeConf(_ settings: [(String, String)]) throws -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var errstr = [CChar](repeating: 0, count: 512)
        for (name, value) in settings where rd_kafka_conf_set(conf, name, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            let shown = isSecret(name) ? "<hidden>" : "'\(value)'"
            throw KafkaError(
                .invalidConfiguration,
                "kafka property \(name) = \(shown) rejected by librdkafka: \(String(cBuffer: errstr)); check [kafka.properties] in the configuration")
        }
        return conf
    }

    /// Properties whose values are never shown: passwords, keys, tokens, and
    /// `sasl.oauthbearer.config`, which may hold a client secret. (librdkafka's own debug dump
    /// redacts the same ones.)
    static func isSecret(_ name: String) -> Bool {
        let name = name.lowercased()
        return ["password", "secret", "key", "token", "oauthbearer.config"].contains { name.contains($0) }
    }
}

/// The raw pointers, immutable after init and owned by one `KafkaHandle`.
private struct RawHandle: @unchecked Sendable {  // librdkafka handles are thread-safe; never mutated
    let pointer: OpaquePointer
    let retainedContext: Unmanaged<KafkaClientContext>
}

extension String {
    /// Text from a NUL-terminated C buffer that librdkafka filled (e.g. an `errstr`).
    init(cBuffer buffer: [CChar]) {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        self.init(decoding: bytes, as: UTF8.self)
    }
}
