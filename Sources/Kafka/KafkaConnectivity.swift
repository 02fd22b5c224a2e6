import CRdKafka
import Foundation
import Logging

/// Checks that a Kafka cluster answers before a client starts work, so that a wrong
/// `bootstrap.servers` fails in seconds with a clear message instead of a silent hang.
public enum KafkaConnectivity {
    /// Sends metadata requests to `brokers` until one is answered.
    ///
    /// Fails fast (without waiting for `timeoutMs`) when librdkafka reports that every bootstrap
    /// broker refused the connection or could not be resolved; otherwise fails after `timeoutMs`
    /// (e.g. a host that drops packets). The error names `bootstrap.servers` and the cause.
    /// - Throws: `KafkaError` with code `.brokerUnreachable`, `.authenticationFailed` (SASL
    ///   credentials or mechanism refused), `.tlsFailed` (certificate or TLS listener problem) or
    ///   `.invalidConfiguration`; each message names the settings to check.
    public static func check(brokers: String, properties: [String: String] = [:], timeoutMs: Int32 = 5_000, logger: Logger) throws {
        let context = KafkaClientContext(logger: logger, role: "connectivity-check", collectsErrors: false)
        let handle = try KafkaHandle(type: RD_KAFKA_PRODUCER, brokers: brokers, defaults: [], properties: properties, context: context)
        defer { handle.destroy() }
        try waitForBroker(handle, timeoutMs: timeoutMs)
    }

    /// The check on an existing client. Must run before a consumer's main queue is redirected
    /// (`rd_kafka_poll_set_consumer`), since it serves `error_cb` through `rd_kafka_poll`.
    ///
    /// An authentication or TLS failure ends the wait at once: waiting cannot fix credentials
    /// or certificates, and the error names the settings to check.
    static func waitForBroker(_ handle: KafkaHandle, timeoutMs: Int32) throws {
        let started = DispatchTime.now().uptimeNanoseconds
        func elapsedMs() -> Int32 { Int32(clamping: (DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) }
        let before = handle.context.health.withLock { $0 }
        while true {
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let slice = max(1, min(200, timeoutMs - elapsedMs()))
            // all_topics = 0 and no topic: asks only for the broker list, which is cheap.
            let err = rd_kafka_metadata(handle.pointer, 0, nil, &metadata, slice)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                rd_kafka_metadata_destroy(metadata)
                return
            }
            rd_kafka_poll(handle.pointer, 0)  // serves error_cb
            let health = handle.context.health.withLock { $0 }
            let newError = health.connectionErrors > before.connectionErrors
            if newError, let failure = settingsFailure(health, bootstrap: handle.bootstrap) { throw failure }
            let allDown = health.allBrokersDownEvents > before.allBrokersDownEvents
            if allDown || elapsedMs() >= timeoutMs {
                let cause = (newError ? health.lastConnectionError : nil)
                    ?? (allDown ? "every broker refused the connection" : "no answer within \(timeoutMs) ms (\(String(cString: rd_kafka_err2str(err))))")
                throw KafkaError(
                    .brokerUnreachable,
                    "cannot reach broker \(handle.bootstrap) (bootstrap.servers): \(cause); check that a Kafka broker listens there and that bootstrap.servers and security.protocol are right",
                    rdkafkaCode: (allDown ? RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN : err).rawValue)
            }
        }
    }

    /// An error that retrying cannot fix, from the last connection error: SASL or TLS.
    private static func settingsFailure(_ health: KafkaClientContext.Health, bootstrap: String) -> KafkaError? {
        guard let code = health.lastConnectionErrorCode, let reason = health.lastConnectionError else { return nil }
        switch rd_kafka_resp_err_t(code) {
        case RD_KAFKA_RESP_ERR__AUTHENTICATION:
            return KafkaError(
                .authenticationFailed,
                "authentication with broker \(bootstrap) (bootstrap.servers) failed: \(reason); check sasl.mechanism, sasl.username and sasl.password, and that security.protocol (SASL_SSL or SASL_PLAINTEXT) matches the broker's listener",
                rdkafkaCode: code)
        case RD_KAFKA_RESP_ERR__SSL:
            return KafkaError(
                .tlsFailed,
                "TLS with broker \(bootstrap) (bootstrap.servers) failed: \(reason); check security.protocol (SSL or SASL_SSL only where the broker listens with TLS), ssl.ca.location (the CA that signed the broker's certificate; default: the system's CAs) and the host names in bootstrap.servers",
                rdkafkaCode: code)
        default:
            return nil
        }
    }
}
