import CNghttp2
import NIOCore

/// One HTTP/2 connection's protocol state: an nghttp2 session (server or client role) plus the
/// requests and responses being assembled on its streams.
///
/// It does no I/O: bytes go in through `receive(_:)` and come out of `send(into:maxBytes:)`, and
/// what happened is reported as `HTTP2SessionEvent`s, so it can be driven by a channel handler or,
/// in tests, by another session. nghttp2 is not thread-safe: a session must only ever be used from
/// one thread (its channel's event loop).
///
/// Bodies handed to `submitResponse`/`submitRequest` are kept here until nghttp2's data-provider
/// callback has copied all of them into frames, and dropped when the stream closes.
final class NGHTTP2Session {
    enum Role {
        case server
        case client
    }

    let role: Role
    /// Largest body (request bodies for a server, response bodies for a client) accepted on one stream.
    let maxBodyBytes: Int
    /// Largest header list (names and values plus 32 bytes per field, as HTTP/2 counts it)
    /// accepted on one stream; a server answers a larger one with 431, a client resets the stream.
    let maxHeaderBytes: Int
    /// Server: decides on each request when its headers arrive (see `HTTPHandler.admit`); a
    /// response refuses the request with it, and its body is dropped as it arrives.
    var admission: ((HTTPRequest) -> HTTPResponse?)?
    /// Server: the peer's address, passed on in every request for logs.
    var remoteAddress: String?
    /// Client: `http`, or `https` over TLS (the `:scheme` of requests).
    var scheme = "http"
    private var raw: OpaquePointer!
    private var streams: [Int32: HTTP2Stream] = [:]
    private var events: [HTTP2SessionEvent] = []
    /// Streams refused while nghttp2 was delivering them (body or headers over the limit, not
    /// admitted), with the answer a server sends; answered after `mem_recv` returns.
    private var pendingRejections: [(streamID: Int32, response: HTTPResponse)] = []
    /// RST_STREAMs to submit once `mem_send` has returned (never from inside its callbacks).
    private var pendingResets: [(streamID: Int32, errorCode: UInt32)] = []
    private var receivedSettings = false

    /// Creates the session and queues its SETTINGS frame (sent by the first `send`).
    ///
    /// - Parameters:
    ///   - maxConcurrentStreams: advertised SETTINGS_MAX_CONCURRENT_STREAMS (server role; a client
    ///     advertises 0 pushes and no stream limit, as it accepts no server-initiated streams).
    ///   - windowBytes: initial per-stream receive window; the connection window is 16 times this.
    init(role: Role, maxBodyBytes: Int, maxHeaderBytes: Int = 64 << 10, maxConcurrentStreams: Int = 128, windowBytes: Int32 = 1 << 20) throws {
        self.role = role
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes

        var callbacks: OpaquePointer?
        try Self.check(nghttp2_session_callbacks_new(&callbacks), "creating callbacks")
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, NGHTTP2Callbacks.onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, NGHTTP2Callbacks.onHeader)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, NGHTTP2Callbacks.onDataChunk)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, NGHTTP2Callbacks.onFrameReceived)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, NGHTTP2Callbacks.onFrameSent)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, NGHTTP2Callbacks.onStreamClose)

        let userData = Unmanaged.passUnretained(self).toOpaque()
        var session: OpaquePointer?
        switch role {
        case .server: try Self.check(nghttp2_session_server_new(&session, callbacks, userData), "creating a server session")
        case .client: try Self.check(nghttp2_session_client_new(&session, callbacks, userData), "creating a client session")
        }
        raw = session

        var settings: [nghttp2_settings_entry] = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(windowBytes)),
        ]
        switch role {
        case .server:
            settings.append(nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(clamping: maxConcurrentStreams)))
        case .client:
            settings.append(nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0))
        }
        try Self.check(nghttp2_submit_settings(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), settings, settings.count), "submitting SETTINGS")
        try Self.check(nghttp2_session_set_local_window_size(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, windowBytes &* 16), "enlarging the connection window")
    }

    deinit {
        nghttp2_session_del(raw)
    }

    // MARK: - Input and output

    /// Feeds bytes received from the peer. Throws when the peer broke the protocol; nghttp2 has then
    /// usually queued a GOAWAY, so send what `send` still produces before closing.
    func receive(_ bytes: ByteBuffer) throws {
        let result = bytes.withUnsafeReadableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return nghttp2_session_mem_recv(raw, base.assumingMemoryBound(to: UInt8.self), buffer.count)
        }
        if result < 0 {
            throw HTTP2SessionError(code: Int32(result), operation: "reading from the peer")
        }
        answerRejections()
    }

    /// Appends the bytes nghttp2 wants to send to `buffer`, stopping early once `buffer` holds at
    /// least `maxBytes` (so the caller can write them and respect backpressure).
    /// - Returns: true when it stopped early and more output may be pending.
    @discardableResult
    func send(into buffer: inout ByteBuffer, maxBytes: Int = .max) throws -> Bool {
        while true {
            var chunk: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(raw, &chunk)
            if count < 0 {
                throw HTTP2SessionError(code: Int32(count), operation: "producing frames")
            }
            if count == 0 {
                if submitPendingResets() { continue }
                return false
            }
            buffer.writeBytes(UnsafeRawBufferPointer(start: chunk, count: count))
            if buffer.readableBytes >= maxBytes { return true }
        }
    }

    /// Events since the last call, in the order they happened.
    func takeEvents() -> [HTTP2SessionEvent] {
        guard !events.isEmpty else { return [] }
        let taken = events
        events.removeAll(keepingCapacity: true)
        return taken
    }

    /// False once the session has nothing left to do (after a GOAWAY exchange, or a fatal error):
    /// the connection should then be closed.
    var isAlive: Bool {
        nghttp2_session_want_read(raw) != 0 || nghttp2_session_want_write(raw) != 0
    }

    /// Streams open right now (requests being received or answered, calls waiting for a response).
    var openStreams: Int { streams.count }

    // MARK: - Server

    /// Queues the response on `streamID`.
    /// - Returns: false when the stream is already gone (the client reset it or the connection is
    ///   going away); the response is then dropped.
    @discardableResult
    func submitResponse(streamID: Int32, _ response: HTTPResponse) -> Bool {
        guard let stream = streams[streamID] else { return false }
        let sendsBody = !response.body.isEmpty && stream.method != "HEAD"
        var fields: [(name: String, value: String)] = [(":status", String(response.status))]
        fields.reserveCapacity(response.headers.count + 2)
        var hasLength = false
        for header in response.headers {
            let name = header.name.lowercased()
            guard !Self.connectionSpecificHeaders.contains(name) else { continue }
            hasLength = hasLength || name == "content-length"
            fields.append((name, header.value))
        }
        if !hasLength {
            fields.append(("content-length", String(response.body.count)))
        }
        if sendsBody {
            stream.outbound = response.body
            stream.outboundSent = 0
        }
        let result = HeaderBlock.withNameValues(fields) { nva, count in
            if sendsBody {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: NGHTTP2Callbacks.readBody)
                return nghttp2_submit_response(raw, streamID, nva, count, &provider)
            }
            return nghttp2_submit_response(raw, streamID, nva, count, nil)
        }
        return result == 0
    }

    /// Tells the client that no stream above the last one received will be processed; streams in
    /// progress finish, after which `isAlive` becomes false.
    func beginGracefulShutdown() {
        nghttp2_submit_goaway(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(raw), NGHTTP2_NO_ERROR.rawValue, nil, 0)
    }

    // MARK: - Client

    /// Queues a request; its HEADERS go out with the next `send` (or later, if the server's stream
    /// limit is reached: nghttp2 holds it until a stream frees up).
    /// - Parameter declareLength: false sends the body without a `content-length` (as a client
    ///   streaming a body of unknown length does), so the server can only count what arrives.
    /// - Returns: the stream id.
    /// - Throws: `HTTP2SessionError` when no new stream may be opened on this connection (GOAWAY
    ///   received, stream ids exhausted); the caller should use another connection.
    func submitRequest(method: String, target: String, authority: String, headers: [(name: String, value: String)], body: [UInt8], declareLength: Bool = true) throws -> Int32 {
        var fields: [(name: String, value: String)] = [
            (":method", method), (":scheme", scheme), (":authority", authority), (":path", target),
        ]
        fields.reserveCapacity(headers.count + 5)
        var hasLength = false
        for header in headers {
            let name = header.name.lowercased()
            guard !Self.connectionSpecificHeaders.contains(name), name != "host" else { continue }
            hasLength = hasLength || name == "content-length"
            fields.append((name, header.value))
        }
        if declareLength && !hasLength && (!body.isEmpty || method == "POST" || method == "PUT") {
            fields.append(("content-length", String(body.count)))
        }
        let streamID = HeaderBlock.withNameValues(fields) { nva, count in
            if body.isEmpty {
                return nghttp2_submit_request(raw, nil, nva, count, nil, nil)
            }
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: NGHTTP2Callbacks.readBody)
            return nghttp2_submit_request(raw, nil, nva, count, &provider, nil)
        }
        guard streamID > 0 else {
            throw HTTP2SessionError(code: streamID, operation: "opening a stream")
        }
        let stream = HTTP2Stream()
        stream.method = method
        stream.target = target
        stream.outbound = body
        streams[streamID] = stream
        return streamID
    }

    /// Queues a PING; nghttp2 on the other side answers it at once, so any frame arriving after
    /// it shows that the peer is alive.
    func ping() {
        nghttp2_submit_ping(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// Abandons a stream (RST_STREAM with CANCEL by default), e.g. when its call timed out.
    func resetStream(_ streamID: Int32, errorCode: UInt32 = NGHTTP2_CANCEL.rawValue) {
        guard streams[streamID] != nil else { return }
        nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    // MARK: - Callback entry points (called by NGHTTP2Callbacks during mem_recv / mem_send)

    static func from(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2Session {
        Unmanaged<NGHTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
    }

    func beginHeaders(_ frame: UnsafePointer<nghttp2_frame>) {
        guard role == .server,
              frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
              frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
        else { return }
        streams[frame.pointee.hd.stream_id] = HTTP2Stream()
    }

    func header(_ frame: UnsafePointer<nghttp2_frame>, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        guard let stream = streams[frame.pointee.hd.stream_id], !stream.tooLarge else { return }
        stream.headerBytes += name.count + value.count + 32
        if stream.headerBytes > maxHeaderBytes {
            let streamID = frame.pointee.hd.stream_id
            reject(streamID, stream, with: .text("request headers exceed the server's limit of \(maxHeaderBytes) bytes; send fewer or shorter headers\n", status: 431),
                   event: .headersTooLarge(streamID: streamID, method: stream.method, path: RequestTarget.split(stream.target).path, limit: maxHeaderBytes))
            return
        }
        let value = String(decoding: value, as: UTF8.self)
        if name.first == UInt8(ascii: ":") {
            switch String(decoding: name, as: UTF8.self) {
            case ":method": stream.method = value
            case ":path": stream.target = value
            case ":authority": stream.authority = value
            case ":status":
                // A final status after an informational (1xx) one starts a fresh header list.
                if stream.status >= 100 && stream.status < 200 { stream.headers.removeAll() }
                stream.status = Int(value) ?? 0
            default: break
            }
            return
        }
        let name = String(decoding: name, as: UTF8.self)
        if name == "content-length", let length = Int(value) {
            stream.declaredLength = length
            // A server checks it once the request is admitted (a refused request gets its refusal,
            // not a 413); a client at once.
            if role == .client {
                checkDeclaredLength(frame.pointee.hd.stream_id, stream)
            }
        }
        stream.headers.append((name, value))
    }

    /// Refuses a body declared larger than the limit before it arrives; otherwise reserves room
    /// for it, at most `maxReservedBytes` up front (a declaration is not a body: memory grows as
    /// bytes actually arrive).
    private func checkDeclaredLength(_ streamID: Int32, _ stream: HTTP2Stream) {
        guard let length = stream.declaredLength, !stream.tooLarge else { return }
        if length > maxBodyBytes {
            markOversized(streamID, stream)
        } else if stream.body.isEmpty && length > 0 {
            stream.body.reserveCapacity(min(length, Self.maxReservedBytes))
        }
    }

    /// Largest up-front reservation for a body of declared length.
    static let maxReservedBytes = 1 << 20

    func dataChunk(streamID: Int32, _ data: UnsafeBufferPointer<UInt8>) {
        guard let stream = streams[streamID], !stream.tooLarge else { return }
        if stream.body.count + data.count > maxBodyBytes {
            markOversized(streamID, stream)
        } else {
            stream.body.append(contentsOf: data)
        }
    }

    func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(header.type) {
        case NGHTTP2_HEADERS.rawValue, NGHTTP2_DATA.rawValue:
            if role == .server, header.type == UInt8(NGHTTP2_HEADERS.rawValue), frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST,
               let stream = streams[header.stream_id], !stream.tooLarge {
                admit(header.stream_id, stream)
                checkDeclaredLength(header.stream_id, stream)
            }
            guard endStream, let stream = streams[header.stream_id], !stream.tooLarge, !stream.completed else { return }
            stream.completed = true
            switch role {
            case .server:
                var (path, query) = RequestTarget.split(stream.target)
                if path.isEmpty { path = "/" }
                var headers = stream.headers
                if !stream.authority.isEmpty && !headers.contains(where: { $0.name == "host" }) {
                    headers.append(("host", stream.authority))
                }
                let request = HTTPRequest(method: stream.method, path: path, query: query, headers: headers, body: stream.body, remoteAddress: remoteAddress)
                stream.body = []
                stream.headers = []
                events.append(.request(streamID: header.stream_id, request))
            case .client:
                let response = HTTPResponse(status: stream.status, headers: stream.headers, body: stream.body)
                stream.body = []
                stream.headers = []
                events.append(.response(streamID: header.stream_id, response))
            }
        case NGHTTP2_SETTINGS.rawValue:
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 && !receivedSettings {
                receivedSettings = true
                events.append(.settingsReceived)
            }
        case NGHTTP2_GOAWAY.rawValue:
            events.append(.goaway(lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code))
        default:
            break
        }
    }

    func frameSent(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        if header.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
            events.append(.sentGoaway(lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code))
            return
        }
        guard header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
              let stream = streams[header.stream_id], stream.resetAfterResponse,
              nghttp2_session_get_stream_remote_close(raw, header.stream_id) == 0
        else { return }
        // The 413 is out but the client is still sending: ask it to stop, without error (RFC 9113 §8.1).
        pendingResets.append((header.stream_id, NGHTTP2_NO_ERROR.rawValue))
    }

    func streamClosed(_ streamID: Int32, errorCode: UInt32) {
        streams.removeValue(forKey: streamID)
        events.append(.streamClosed(streamID: streamID, errorCode: errorCode))
    }

    /// Copies the next piece of a stream's outbound body into `buffer` (nghttp2's data-provider read).
    func readBody(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, capacity: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let stream = streams[streamID] else {
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        let count = min(capacity, stream.outbound.count - stream.outboundSent)
        if count > 0 {
            stream.outbound.withUnsafeBufferPointer { source in
                buffer.update(from: source.baseAddress! + stream.outboundSent, count: count)
            }
            stream.outboundSent += count
        }
        if stream.outboundSent == stream.outbound.count {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            stream.outbound = []
            stream.outboundSent = 0
        }
        return count
    }

    // MARK: - Private

    private func markOversized(_ streamID: Int32, _ stream: HTTP2Stream) {
        reject(streamID, stream, with: .text("request body exceeds the server's limit of \(maxBodyBytes) bytes; send a smaller body\n", status: 413),
               event: .bodyTooLarge(streamID: streamID, method: stream.method, path: RequestTarget.split(stream.target).path, limit: maxBodyBytes))
    }

    /// Server: asks `admission` about a request whose headers are complete.
    private func admit(_ streamID: Int32, _ stream: HTTP2Stream) {
        guard let admission else { return }
        var (path, query) = RequestTarget.split(stream.target)
        if path.isEmpty { path = "/" }
        let head = HTTPRequest(method: stream.method, path: path, query: query, headers: stream.headers, remoteAddress: remoteAddress)
        if let refusal = admission(head) {
            reject(streamID, stream, with: refusal, event: .refused(streamID: streamID, method: stream.method, path: path, status: refusal.status))
        }
    }

    /// Stops taking input for a stream: what arrives for it is dropped. A server answers it with
    /// `response` (then resets it with NO_ERROR if the peer is still sending), a client resets it
    /// with CANCEL. Reported now, so that `event` comes before the stream's `streamClosed`;
    /// answered once `mem_recv` has returned.
    private func reject(_ streamID: Int32, _ stream: HTTP2Stream, with response: HTTPResponse, event: HTTP2SessionEvent) {
        guard !stream.tooLarge else { return }
        stream.tooLarge = true
        stream.body = []
        stream.headers = []
        events.append(event)
        pendingRejections.append((streamID, response))
    }

    private func answerRejections() {
        guard !pendingRejections.isEmpty else { return }
        let rejections = pendingRejections
        pendingRejections.removeAll()
        for (streamID, response) in rejections {
            guard let stream = streams[streamID] else { continue }  // already closed: nothing to answer
            switch role {
            case .server:
                stream.resetAfterResponse = true
                submitResponse(streamID: streamID, response)
            case .client:
                nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_CANCEL.rawValue)
            }
        }
    }

    private func submitPendingResets() -> Bool {
        guard !pendingResets.isEmpty else { return false }
        let resets = pendingResets
        pendingResets.removeAll()
        for reset in resets {
            nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), reset.streamID, reset.errorCode)
        }
        return true
    }

    /// Hop-by-hop headers HTTP/2 forbids (RFC 9113 §8.2.2); peers reject messages carrying them.
    private static let connectionSpecificHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
    ]

    private static func check(_ code: Int32, _ operation: String) throws {
        if code != 0 { throw HTTP2SessionError(code: code, operation: operation) }
    }

    static func describe(libraryError code: Int32) -> String {
        String(cString: nghttp2_strerror(code))
    }

    static func describe(errorCode: UInt32) -> String {
        String(cString: nghttp2_http2_strerror(errorCode))
    }
}

/// A request or response being assembled on one stream, and the body going out on it.
final class HTTP2Stream {
    var method = ""
    var target = ""
    var authority = ""
    var status = 0
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    /// END_STREAM arrived and the message was delivered.
    var completed = false
    /// The stream was refused (body or headers over the limit, or not admitted); what arrives
    /// for it is dropped.
    var tooLarge = false
    /// Bytes of header list received so far (RFC 9113 §6.5.2 accounting).
    var headerBytes = 0
    /// The `content-length` the peer declared, if any.
    var declaredLength: Int?
    /// Reset the stream (NO_ERROR) once the response has gone out, if the peer is still sending.
    var resetAfterResponse = false
    var outbound: [UInt8] = []
    var outboundSent = 0
}
