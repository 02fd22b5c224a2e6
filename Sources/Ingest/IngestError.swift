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
