import CNghttp2

/// nghttp2's session callbacks, as C function pointers on a non-isolated type.
///
/// They must not be closure literals inside actor-isolated code: Swift would add an executor
/// check that traps when nghttp2 calls them (NOTES.md, "Swift 6 and C callbacks"). Each one finds
/// its `NGHTTP2Session` through `user_data` (an unretained `Unmanaged` reference; the session
/// outlives its nghttp2 session, which it deletes in `deinit`). They only record what happened;
/// the owner acts on the resulting events after `mem_recv`/`mem_send` returns.
enum NGHTTP2Callbacks {
    static let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
        NGHTTP2Session.from(userData).beginHeaders(frame!)
        return 0
    }

    static let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
        NGHTTP2Session.from(userData).header(
            frame!,
            name: UnsafeBufferPointer(start: name, count: nameLength),
            value: UnsafeBufferPointer(start: value, count: valueLength)
        )
        return 0
    }

    static let onDataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, streamID, data, length, userData in
        NGHTTP2Session.from(userData).dataChunk(streamID: streamID, UnsafeBufferPointer(start: data, count: length))
        return 0
    }

    static let onFrameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
        NGHTTP2Session.from(userData).frameReceived(frame!)
        return 0
    }

    static let onFrameSent: nghttp2_on_frame_send_callback = { _, frame, userData in
        NGHTTP2Session.from(userData).frameSent(frame!)
        return 0
    }

    static let onStreamClose: nghttp2_on_stream_close_callback = { _, streamID, errorCode, userData in
        NGHTTP2Session.from(userData).streamClosed(streamID, errorCode: errorCode)
        return 0
    }

    static let readBody: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, userData in
        NGHTTP2Session.from(userData).readBody(streamID: streamID, into: buffer!, capacity: length, flags: flags!)
    }
}

/// Builds the `nghttp2_nv` array nghttp2 wants for a header list. nghttp2 copies names and values
/// when a frame is submitted, so the storage only has to live for the duration of `body`.
enum HeaderBlock {
    static func withNameValues<Result>(_ fields: [(name: String, value: String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> Result) -> Result {
        var storage: [UInt8] = []
        storage.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count })
        var ranges: [(name: Int, nameCount: Int, value: Int, valueCount: Int)] = []
        ranges.reserveCapacity(fields.count)
        for field in fields {
            let nameStart = storage.count
            storage.append(contentsOf: field.name.utf8)
            let valueStart = storage.count
            storage.append(contentsOf: field.value.utf8)
            ranges.append((nameStart, valueStart - nameStart, valueStart, storage.count - valueStart))
        }
        storage.append(0)  // never empty, so the base address below exists
        return storage.withUnsafeMutableBufferPointer { bytes in
            let base = bytes.baseAddress!
            let nva = ranges.map { range in
                nghttp2_nv(
                    name: base + range.name, value: base + range.value,
                    namelen: range.nameCount, valuelen: range.valueCount,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
                )
            }
            return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}
