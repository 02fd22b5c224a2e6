import CRdKafka
import Logging
import Synchronization

/// What librdkafka's callbacks see of a client, through the handle's opaque pointer.
///
/// `log_cb` and `error_cb` run on librdkafka's internal threads (or inside `rd_kafka_poll`),
/// `dr_msg_cb` on the thread that polls; so the context is `Sendable` and keeps everything
/// mutable behind mutexes.
final class KafkaClientContext: Sendable {
    /// Delivery report totals since the client was created.
    struct Deliveries {
        var enqueued = 0
        var delivered = 0
        var failed = 0
        var firstError: String?
    }

    /// What the client learned about its connection to the cluster.
    struct Health {
        var lastConnectionError: String?
        /// librdkafka's code for `lastConnectionError` (`_TRANSPORT`, `_SSL`, `_AUTHENTICATION`...).
        var lastConnectionErrorCode: Int32?
        /// Connection errors seen since the client was created.
        var connectionErrors = 0
        var allBrokersDownEvents = 0
    }

    /// Client-level errors waiting for the consumer's next `poll` (bounded; overflow is counted
    /// and reported as one more error, never dropped silently).
    struct PendingErrors {
        static let capacity = 256
        var errors: [KafkaError] = []
        var overflow = 0
    }

    let logger: Logger
    /// Whether client-level errors are kept for `drainErrors` (consumers) or only logged.
    let collectsErrors: Bool
    let deliveries = Mutex(Deliveries())
    let health = Mutex(Health())
    private let pending = Mutex(PendingErrors())

    init(logger: Logger, role: String, collectsErrors: Bool) {
        var logger = logger
        logger[metadataKey: "kafka.client"] = "\(role)"
        self.logger = logger
        self.collectsErrors = collectsErrors
    }

    /// Hands back (and forgets) the client-level errors seen since the last call.
    func drainErrors() -> [KafkaError] {
        pending.withLock { state in
            var errors = state.errors
            if state.overflow > 0 {
                errors.append(KafkaError(
                    .client, "\(state.overflow) more kafka client errors were not kept (see the log); the consumer was not polled often enough"))
            }
            state = PendingErrors()
            return errors
        }
    }

    fileprivate func log(level: Int32, facility: String, message: String) {
        // syslog levels: 0...3 error and worse, 4 warning, 5 notice, 6 info, 7 debug.
        // A library logs at info or below; callers decide what is worth a warning.
        let swiftLevel: Logger.Level = level <= 4 ? .info : (level <= 6 ? .debug : .trace)
        logger.log(level: swiftLevel, "\(message)", metadata: ["rdkafka.facility": "\(facility)"])
    }

    fileprivate func handleError(_ rk: OpaquePointer?, code: Int32, reason: String) {
        let err = rd_kafka_resp_err_t(code)
        let name = String(cString: rd_kafka_err2name(err))
        var error: KafkaError
        switch err {
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
            health.withLock { $0.allBrokersDownEvents += 1 }
            logger.warning("all kafka brokers are down: \(reason)")
            error = KafkaError(.client, "all kafka brokers are down (\(reason)); librdkafka keeps reconnecting, check the brokers and bootstrap.servers", rdkafkaCode: code)
        case RD_KAFKA_RESP_ERR__FATAL:
            var buffer = [CChar](repeating: 0, count: 512)
            let underlying = rk.map { rd_kafka_fatal_error($0, &buffer, buffer.count) } ?? RD_KAFKA_RESP_ERR_NO_ERROR
            let detail = underlying == RD_KAFKA_RESP_ERR_NO_ERROR ? reason : String(cBuffer: buffer)
            logger.warning("fatal kafka client error: \(detail)")
            error = KafkaError(.fatal, "fatal kafka client error: \(detail); the client must be recreated", rdkafkaCode: code)
        default:
            // log_cb has already reported the same event at info.
            logger.debug("kafka client error \(name): \(reason)")
            error = KafkaError(.client, "kafka client error \(name): \(reason)", rdkafkaCode: code)
        }
        if Self.isConnectionError(err) {
            health.withLock { health in
                health.lastConnectionError = reason
                health.lastConnectionErrorCode = code
                health.connectionErrors += 1
            }
        }
        guard collectsErrors else { return }
        pending.withLock { state in
            if state.errors.count < PendingErrors.capacity {
                state.errors.append(error)
            } else {
                state.overflow += 1
            }
        }
    }

    fileprivate func handleDelivery(_ message: UnsafePointer<rd_kafka_message_t>) {
        let err = message.pointee.err
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else {
            deliveries.withLock { $0.delivered += 1 }
            return
        }
        let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
        let reason = String(cString: rd_kafka_err2str(err))
        let first = deliveries.withLock { state -> Bool in
            state.failed += 1
            if state.firstError == nil {
                state.firstError = "record to \(topic) [\(message.pointee.partition)] not delivered: \(reason)"
                return true
            }
            return false
        }
        if first {
            logger.info("kafka delivery failed", metadata: ["topic": "\(topic)", "partition": "\(message.pointee.partition)", "reason": "\(reason)"])
        }
    }

    private static func isConnectionError(_ err: rd_kafka_resp_err_t) -> Bool {
        switch err {
        // Not _ALL_BROKERS_DOWN: its reason ("1/1 brokers are down") would hide the cause.
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__RESOLVE, RD_KAFKA_RESP_ERR__SSL,
             RD_KAFKA_RESP_ERR__AUTHENTICATION:
            return true
        default:
            return false
        }
    }
}

/// librdkafka's C callbacks. They are constants of a non-isolated type, not closures written in
/// actor-isolated code: Swift would insert an executor check that traps when librdkafka calls
/// them from its own threads (see NOTES.md). Context travels through the client's opaque pointer.
enum KafkaCallbacks {
    static let log: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
        rk, level, facility, message in
        guard let context = context(of: rk) else { return }
        context.log(
            level: level, facility: facility.map { String(cString: $0) } ?? "",
            message: message.map { String(cString: $0) } ?? "")
    }

    static let error: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
        rk, code, reason, opaque in
        guard let opaque else { return }
        let context = Unmanaged<KafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
        context.handleError(rk, code: code, reason: reason.map { String(cString: $0) } ?? "")
    }

    static let delivery: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
        _, message, opaque in
        guard let message, let opaque else { return }
        Unmanaged<KafkaClientContext>.fromOpaque(opaque).takeUnretainedValue().handleDelivery(message)
    }

    private static func context(of rk: OpaquePointer?) -> KafkaClientContext? {
        guard let rk, let opaque = rd_kafka_opaque(rk) else { return nil }
        return Unmanaged<KafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
    }
}
