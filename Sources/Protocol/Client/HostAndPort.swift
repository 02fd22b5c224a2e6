import Foundation

/// A `HOST:PORT` pair as operators write it (`--coordinator 10.0.0.5:7400`, `[::1]:7400`).
public struct HostAndPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; an IPv6 host is written in brackets (`[::1]:7400`).
    /// - Throws: `InvalidAddressError` saying what is wrong and what is expected.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        func invalid(_ problem: String) -> InvalidAddressError {
            InvalidAddressError(address: text, problem: problem)
        }
        let hostPart: Substring
        let portPart: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else { throw invalid("missing ']' after the IPv6 address") }
            hostPart = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":") else { throw invalid("missing ':PORT' after the IPv6 address") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else { throw invalid("missing ':PORT'") }
            hostPart = trimmed[..<colon]
            portPart = trimmed[trimmed.index(after: colon)...]
            guard !hostPart.contains(":") else { throw invalid("an IPv6 address must be written in brackets, e.g. [::1]:7400") }
        }
        guard !hostPart.isEmpty else { throw invalid("the host is empty") }
        guard let port = Int(portPart), (1...65535).contains(port) else {
            throw invalid("the port must be a number from 1 to 65535, not \"\(portPart)\"")
        }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// An address that is not `HOST:PORT`.
public struct InvalidAddressError: Error, CustomStringConvertible, Sendable, Equatable {
    public let address: String
    public let problem: String

    public var description: String {
        "invalid address \"\(address)\": \(problem); expected HOST:PORT, e.g. 127.0.0.1:7400 or [::1]:7400"
    }
}
