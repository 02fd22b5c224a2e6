/// Why ingestion could not start or go on, in one line that names the file, field or setting
/// and says what to do about it.
///
/// Compare `code` to tell cases apart (`error.code == .scheduleDoesNotFit`); `message` is for people.
public struct IngestError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A stable category of ingestion failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidConfig = "invalid simulator configuration"
            case scheduleDoesNotFit = "anomaly schedule does not fit"
            case cannotOpen = "cannot open file"
            case readFailed = "read failed"
            case writeFailed = "write failed"
            case produceFailed = "produce failed"
            case invalidArgument = "invalid argument"
            case unrecognizedInput = "unrecognized input"
            case connectFailed = "cannot connect"
            case tlsFailed = "TLS failed"
            case upgradeRejected = "WebSocket upgrade refused"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A simulator setting is out of range (the message names it and the accepted range).
        public static let invalidConfig = Code(.invalidConfig)
        /// The requested anomalies, spacing and warm-up need more event time than the duration gives.
        public static let scheduleDoesNotFit = Code(.scheduleDoesNotFit)
        /// An input or output file could not be opened or created.
        public static let cannotOpen = Code(.cannotOpen)
        /// Reading an input file failed part-way.
        public static let readFailed = Code(.readFailed)
        /// Writing an output file failed (disk full, permissions).
        public static let writeFailed = Code(.writeFailed)
        /// The Kafka producer refused a record for a reason other than a full queue.
        public static let produceFailed = Code(.produceFailed)
        /// A feed setting (URL, symbol list, TLS configuration) is invalid; the message names it.
        public static let invalidArgument = Code(.invalidArgument)
        /// A replay file's format, layout or symbol cannot be told from its name and contents.
        public static let unrecognizedInput = Code(.unrecognizedInput)
        /// A TCP connection (or the HTTP handshake on it) to a feed could not be made: refused,
        /// unresolvable host, timeout. Long-running feeds retry these.
        public static let connectFailed = Code(.connectFailed)
        /// The TLS handshake with a feed failed (untrusted certificate, wrong host name, a server
        /// that does not speak TLS).
        public static let tlsFailed = Code(.tlsFailed)
        /// The feed's server answered the WebSocket handshake with an HTTP status other than 101.
        public static let upgradeRejected = Code(.upgradeRejected)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
