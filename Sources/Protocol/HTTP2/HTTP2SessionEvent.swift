/// Something an `NGHTTP2Session` noticed while consuming input or producing output. The channel
/// handler that owns the session acts on these after each call, outside nghttp2's callbacks.
enum HTTP2SessionEvent {
    /// Server: a complete request (headers and whole body) arrived on `streamID`.
    case request(streamID: Int32, HTTPRequest)
    /// Client: a complete response arrived on `streamID`.
    case response(streamID: Int32, HTTPResponse)
    /// A body on `streamID` outgrew the session's limit. A server session has already answered 413
    /// (and resets the stream with NO_ERROR once the answer is out); a client session has already
    /// reset the stream with CANCEL. No `request`/`response` event follows for that stream.
    case bodyTooLarge(streamID: Int32, method: String, path: String, limit: Int)
    /// The header list on `streamID` outgrew the session's limit: answered 431 (server) or reset
    /// (client), like `bodyTooLarge`.
    case headersTooLarge(streamID: Int32, method: String, path: String, limit: Int)
    /// Server: the handler's `admit` refused the request on `streamID` with `status`; the answer is
    /// on its way and no `request` event follows.
    case refused(streamID: Int32, method: String, path: String, status: Int)
    /// The stream is gone; `errorCode` is its HTTP/2 error code (0 = NO_ERROR). Follows every
    /// stream, including those that produced a `request` or `response`.
    case streamClosed(streamID: Int32, errorCode: UInt32)
    /// The peer's first SETTINGS frame arrived: for a client, the connection is ready (the server's
    /// stream limit is known).
    case settingsReceived
    /// The peer is going away: streams above `lastStreamID` were not and will not be processed.
    case goaway(lastStreamID: Int32, errorCode: UInt32)
    /// This side sent a GOAWAY: a graceful one (NO_ERROR), or nghttp2 ending the connection
    /// because the peer broke the protocol (any other error code).
    case sentGoaway(lastStreamID: Int32, errorCode: UInt32)
}

/// nghttp2 refused an operation; `code` is its (negative) library error code.
struct HTTP2SessionError: Error, CustomStringConvertible {
    let code: Int32
    let operation: String

    var description: String {
        "HTTP/2 \(operation) failed: \(NGHTTP2Session.describe(libraryError: code))"
    }
}
