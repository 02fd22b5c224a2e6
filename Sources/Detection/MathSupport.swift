#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Natural logarithm from the platform's libm (the stdlib has none; Foundation is not needed
/// for it). Results are bit-identical on one platform, which is what determinism needs: the
/// cluster and `vigil detect` run the same code on the same libm.
@inline(__always)
func naturalLog(_ x: Double) -> Double {
    log(x)
}

/// `e^x` from the platform's libm, for the same reason as `naturalLog`.
@inline(__always)
func naturalExp(_ x: Double) -> Double {
    exp(x)
}

/// Formats `value` with exactly `decimals` digits after the point, rounding half away from
/// zero ("-2.31", "0.00"). Falls back to Swift's shortest representation beyond 1e15 or for
/// non-finite values. For descriptions only: never parsed back.
func formatFixed(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<max(0, decimals) { scale *= 10 }
    let scaled = (abs(value) * scale).rounded(.toNearestOrAwayFromZero)
    guard scaled < 1e15 else { return "\(value)" }
    let units = Int64(scaled)
    let divisor = Int64(scale)
    let whole = units / divisor
    var text = value < 0 && units != 0 ? "-" : ""
    text += String(whole)
    if decimals > 0 {
        let fraction = String(units % divisor)
        text += "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
    return text
}

/// Floor division (rounds toward negative infinity), for pane indices of negative times.
@inline(__always)
func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

extension Duration {
    /// The duration in seconds, as a `Double` (rates, timeouts, log lines).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
