import Detection
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What became of one delivery attempt.
public enum WebhookOutcome: Sendable, Equatable {
    case delivered
    /// Worth retrying: network error, timeout, 5xx, 408 or 429.
    case retry(String)
    /// The receiver refused the alert itself (any other 4xx, e.g. a revoked webhook): retrying
    /// cannot help.
    case refused(String)

    /// Classifies an HTTP status.
    public static func of(status: Int, body: String) -> WebhookOutcome {
        let detail = "HTTP \(status) \(body.prefix(200))".trimmingCharacters(in: .whitespacesAndNewlines)
        switch status {
        case 200..<300: return .delivered
        case 408, 429: return .retry(detail)
        case 400..<500: return .refused(detail)
        default: return .retry(detail)
        }
    }
}

/// Posts an alert body to a webhook.
public protocol AlertWebhook: Sendable {
    func post(_ body: [UInt8], to url: String) async -> WebhookOutcome
}

/// The real webhook client: an HTTP(S) POST with `content-type: application/json` through
/// Foundation's URLSession (HTTP/1.1 and HTTP/2 over TLS, as Slack wants), with a timeout.
public struct URLSessionWebhook: AlertWebhook {
    public var timeout: Duration

    public init(timeout: Duration = .seconds(10)) {
        self.timeout = timeout
    }

    public func post(_ body: [UInt8], to url: String) async -> WebhookOutcome {
        guard let target = URL(string: url), let scheme = target.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            return .refused("alerts.webhook_url \"\(url)\" is not an http(s) URL")
        }
        var request = URLRequest(url: target)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "content-type")
        request.httpBody = Data(body)
        request.timeoutInterval = timeout.inSeconds
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            guard let http = response as? HTTPURLResponse else { return .retry("not an HTTP response") }
            return .of(status: http.statusCode, body: String(decoding: data, as: UTF8.self))
        } catch {
            return .retry("\(error.localizedDescription)")
        }
    }
}
