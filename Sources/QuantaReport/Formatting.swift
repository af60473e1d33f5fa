// Number and column formatting for reports and command output (no Foundation).

/// 1234567 -> "1,234,567".
public func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (value < 0 ? "-" : "") + out
}

/// `value` with `places` decimals, without Foundation.
public func fixed(_ value: Double, _ places: Int) -> String {
    guard value.isFinite, places <= 18 else { return "\(value)" }
    var scale: Int64 = 1
    for _ in 0..<max(places, 0) { scale *= 10 }
    // Beyond Int64 (a number read from a report can be anything) Swift's shortest form is shown.
    guard let scaled = Int64(exactly: (abs(value) * Double(scale)).rounded()) else { return "\(value)" }
    let sign = value < 0 && scaled != 0 ? "-" : ""
    guard places > 0 else { return sign + String(scaled) }
    let digits = String(scaled % scale)
    return sign + String(scaled / scale) + "." + String(repeating: "0", count: places - digits.count) + digits
}

/// Bytes as "12.34 MB" (10^6).
public func megabytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1e6, 2) + " MB" }

extension String {
    /// The string followed by spaces up to `width` characters (unchanged when longer).
    public func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    /// Spaces then the string, up to `width` characters (unchanged when longer).
    public func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
