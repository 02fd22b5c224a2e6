/// A request the coordinator cannot serve, with the HTTP status it maps to and a message that
/// says what to do.
public struct CoordinatorError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The request is malformed or not acceptable (400).
        case badRequest
        /// No such resource (404).
        case notFound
        /// The database failed (500).
        case storage
    }

    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// The HTTP status this error is answered with.
    public var httpStatus: Int {
        switch kind {
        case .badRequest: 400
        case .notFound: 404
        case .storage: 500
        }
    }
}
