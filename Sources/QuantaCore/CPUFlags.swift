#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The instruction-set flags the kernel reports for the first CPU (the `flags` line of
/// /proc/cpuinfo, e.g. "avx2", "fma", "avx512f"). Read once; nil where there is no
/// /proc/cpuinfo or it has no `flags` line (macOS, some containers).
public enum CPUFlags {
    public static let current: Set<String>? = read(path: "/proc/cpuinfo")

    /// The flags of the first `flags` line of a cpuinfo-formatted file at `path`.
    public static func read(path: String) -> Set<String>? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.hasPrefix("flags"), let colon = text.firstIndex(of: ":") else { continue }
            return Set(text[text.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init))
        }
        return nil
    }

    /// Whether the CPU reports `flag`; false when the flags are unknown.
    public static func has(_ flag: String) -> Bool { current?.contains(flag) ?? false }
}
