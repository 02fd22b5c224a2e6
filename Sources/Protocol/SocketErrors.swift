import NIOCore
import NIOPosix

/// Short, lowercase explanations of socket errors for messages like
/// "cannot reach 10.0.0.5:7000: connection refused".
enum SocketErrors {
    static func describe(errno code: Int32) -> String {
        switch code {
        case ECONNREFUSED: "connection refused (is the server running and listening on that port?)"
        case EADDRINUSE: "address already in use"
        case EADDRNOTAVAIL: "address not available on this host"
        case EACCES: "permission denied"
        case EHOSTUNREACH: "host unreachable"
        case ENETUNREACH: "network unreachable"
        case ETIMEDOUT: "connection timed out"
        case ECONNRESET: "connection reset by peer"
        default: String(cString: strerror(code)).lowercased()
        }
    }

    /// Describes an error from `ClientBootstrap.connect` (refused, timed out, DNS failure...).
    static func describeConnectFailure(_ error: any Error, timeout: Duration) -> String {
        switch error {
        case let error as NIOConnectionError:
            if let dns = error.dnsAError ?? error.dnsAAAAError, error.connectionErrors.isEmpty {
                return "cannot resolve the host name (\(dns))"
            }
            if let first = error.connectionErrors.first {
                return describeConnectFailure(first.error, timeout: timeout)
            }
            return "no address to connect to"
        case let error as IOError:
            return describe(errno: error.errnoCode)
        case ChannelError.connectTimeout:
            return "no answer within \(timeout) (host down or a firewall dropping packets?)"
        default:
            return "\(error)"
        }
    }
}
