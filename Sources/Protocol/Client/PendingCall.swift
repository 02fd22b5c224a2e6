import NIOCore

/// What a caller asked for, as it crosses from the calling task to the event loop.
struct OutgoingRequest: Sendable {
    var method: String
    /// Path and query, as sent in `:path`.
    var target: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    var summary: String { "\(method) \(RequestTarget.split(target).path)" }
}

/// One call from `RPCClient.request` until its promise completes. Lives on the client's event
/// loop; completed exactly once, by `RPCClientCore.finish`.
final class PendingCall {
    let request: OutgoingRequest
    let promise: EventLoopPromise<HTTPResponse>
    var timeout: Scheduled<Void>?
    /// The stream carrying the call, once submitted on a connection.
    var streamID: Int32?
    weak var connection: HTTP2ClientConnectionHandler?
    /// Times the call was submitted; a call refused by the server (REFUSED_STREAM, or above a
    /// GOAWAY's last stream) was not processed and is resubmitted, a bounded number of times.
    var attempts = 0
    var finished = false

    init(request: OutgoingRequest, promise: EventLoopPromise<HTTPResponse>) {
        self.request = request
        self.promise = promise
    }
}
