#if canImport(Glibc)
import Glibc
#endif

/// A private folder (under `$TMPDIR`, default /tmp) where harnesses put each input as the
/// file the parser under test opens, so the real path (open, mmap, stat) is what runs.
/// Removed at normal exit; Scripts/fuzz.sh removes what a crash leaves.
public enum Scratch {
    public static let folder: String = {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/quanta-fuzz-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { fatalError("cannot create a scratch folder under \(base)") }
        let path = String(cString: template)
        atexit { Scratch.removeAll() }
        return path
    }()

    /// The path of `name` inside the scratch folder.
    public static func path(_ name: String) -> String { "\(folder)/\(name)" }

    /// Writes `bytes` to `name` in the scratch folder (replacing it) and returns its path.
    @discardableResult
    public static func write(_ bytes: UnsafeRawBufferPointer, to name: String) -> String {
        let path = path(name)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { fatalError("cannot write \(path)") }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            guard n > 0 else { fatalError("cannot write \(path)") }
            done += n
        }
        close(fd)
        return path
    }

    @discardableResult
    public static func write(_ bytes: [UInt8], to name: String) -> String {
        bytes.withUnsafeBytes { write($0, to: name) }
    }

    @discardableResult
    public static func write(_ text: String, to name: String) -> String { write(Array(text.utf8), to: name) }

    /// Removes `name` from the scratch folder if it is there.
    public static func remove(_ name: String) { unlink(path(name)) }

    static func removeAll() {
        guard let dir = opendir(folder) else { return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { unlink("\(folder)/\(name)") }
        }
        closedir(dir)
        rmdir(folder)
    }
}

/// Reads structured choices out of fuzzer bytes (as LLVM's FuzzedDataProvider does): every
/// read succeeds, returning zeros once the bytes run out.
public struct FuzzBytes {
    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var isEmpty: Bool { index >= bytes.count }

    public mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// An integer in `range`, from as many bytes as the range needs.
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound)
        var value: UInt64 = 0, covered: UInt64 = 0
        while covered < span {
            value = value << 8 | UInt64(byte())
            covered = covered << 8 | 0xFF
        }
        return range.lowerBound + Int(span == UInt64.max ? value : value % (span + 1))
    }

    /// One of `choices`.
    public mutating func pick<T>(_ choices: [T]) -> T { choices[int(0...(choices.count - 1))] }

    /// A 64-bit value from 8 bytes (little-endian).
    public mutating func u64() -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(byte()) << (8 * UInt64(i)) }
        return v
    }

    /// Up to `maxLength` bytes as text (a length byte, then the bytes; invalid UTF-8 repaired).
    public mutating func string(maxLength: Int = 32) -> String {
        let n = int(0...maxLength)
        var raw: [UInt8] = []
        for _ in 0..<n where !isEmpty { raw.append(byte()) }
        return String(decoding: raw, as: UTF8.self)
    }
}
