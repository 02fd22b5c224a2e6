import NIOSSL

/// One-line explanations of TLS failures, with what to check, for logs and `RPCError`s.
enum TLSErrors {
    enum Side {
        /// We are the server; the peer is a client.
        case server
        /// We are the client; the peer is the server at `HOST:PORT`.
        case client
    }

    /// True for a peer that closed the connection during the handshake without saying why (a
    /// TCP health check, a port scanner, a client giving up): not worth counting as a failure.
    static func isEOFDuringHandshake(_ error: any Error) -> Bool {
        if case NIOSSLError.handshakeFailed(.sslError(let stack)) = error {
            return stack.contains { "\($0)".contains("EOF during") }
        }
        return false
    }

    /// "the server's certificate is not signed by the CA in [security] tls_ca (CERTIFICATE_VERIFY_FAILED)".
    static func describe(_ error: any Error, side: Side) -> String {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "the server's certificate does not name the host that was dialled (\(extra)); connect with a name or IP address in its subject alternative names"
        }
        let text = "\(error)"
        let upper = text.uppercased()
        func has(_ needle: String) -> Bool { upper.contains(needle) }
        let hint: String
        switch side {
        case .client:
            if has("WRONG_VERSION_NUMBER") || has("PACKET_LENGTH_TOO_LONG") || has("HTTP_REQUEST") || has("RECORD_TOO_LARGE") {
                hint = "the server does not speak TLS; remove [security] tls_ca on this side, or set tls_certificate and tls_key on the coordinator"
            } else if has("CERTIFICATE_VERIFY_FAILED") || has("UNABLE_TO_GET_ISSUER") || has("SELF_SIGNED") || has("CERTIFICATE_UNKNOWN") {
                hint = "the server's certificate is not signed by the CA in [security] tls_ca (or by a CA the system trusts)"
            } else if has("EXPIRED") {
                hint = "a certificate in the chain has expired (or is not valid yet); check the clocks and renew it"
            } else if has("CERTIFICATE_REQUIRED") || has("HANDSHAKE_FAILURE") || has("BAD_CERTIFICATE") || has("UNKNOWN_CA") {
                hint = "the server refused this client's certificate, or wants one: set [security] tls_certificate and tls_key to a certificate signed by the coordinator's tls_ca"
            } else if has("EOF DURING") {
                hint = "the server closed the connection during the handshake (does it require a client certificate? is it a TLS server?)"
            } else {
                hint = "check [security] tls_ca, tls_certificate and tls_key on both sides"
            }
        case .server:
            if has("PEER_DID_NOT_RETURN_A_CERTIFICATE") || has("CERTIFICATE_REQUIRED") {
                hint = "the client presented no certificate and require_client_certificate is on; give it tls_certificate and tls_key signed by tls_ca"
            } else if has("CERTIFICATE_VERIFY_FAILED") || has("UNABLE_TO_GET_ISSUER") || has("SELF_SIGNED") {
                hint = "the client's certificate is not signed by the CA in [security] tls_ca"
            } else if has("EXPIRED") {
                hint = "the client's certificate has expired (or is not valid yet)"
            } else if has("UNKNOWN_CA") || has("BAD_CERTIFICATE") || has("CERTIFICATE_UNKNOWN") {
                hint = "the client does not trust this server's certificate: give it the CA that signed it as [security] tls_ca"
            } else if has("UNSUPPORTED_PROTOCOL") || has("NO_SHARED_CIPHER") || has("VERSION") {
                hint = "the client offered no TLS version or cipher this server accepts (TLS 1.2 or later)"
            } else if has("HTTP_REQUEST") || has("WRONG_VERSION_NUMBER") {
                hint = "the client spoke cleartext to the TLS port"
            } else {
                hint = "check the client's TLS settings"
            }
        }
        return "\(hint) (\(Self.shorten(text)))"
    }

    /// NIOSSL's error stacks are long; the first 300 characters say what matters.
    private static func shorten(_ text: String) -> String {
        text.count <= 300 ? text : String(text.prefix(300)) + "..."
    }
}
