#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuantaCore

/// Bounds-checked little-endian reads over a byte buffer. Every read that would pass the
/// end throws a `.malformed` error naming the file, what was being read and the offset.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public let path: String
    public private(set) var offset: Int

    public init(_ bytes: UnsafeRawBufferPointer, path: String, offset: Int = 0) {
        self.bytes = bytes
        self.path = path
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }

    /// Fails unless `count` more bytes are available for `what` (made only for the message:
    /// a file's metadata has one description per array element).
    public func require(_ count: Int, for what: @autoclosure () -> String) throws {
        guard count >= 0, count <= remaining else {
            throw QuantaError.malformed(path, "truncated: \(what()) needs \(count) bytes at offset \(offset) "
                                        + "but the file has \(remaining) left")
        }
    }

    public mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self, _ what: @autoclosure () -> String) throws -> T {
        try require(MemoryLayout<T>.size, for: what())
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: value)
    }

    /// The next integer without moving, or nil when the bytes left are too few.
    public func peek<T: FixedWidthInteger>(_: T.Type) -> T? {
        guard MemoryLayout<T>.size <= remaining else { return nil }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// The next integer, or nil (and no move) when the bytes left are too few: for hot loops
    /// whose caller names what is read only on failure.
    public mutating func take<T: FixedWidthInteger>(_: T.Type) -> T? {
        guard let value = peek(T.self) else { return nil }
        offset += MemoryLayout<T>.size
        return value
    }

    /// Skips `count` bytes, or returns false (and stays) when fewer are left.
    @discardableResult
    public mutating func take(_ count: Int) -> Bool {
        guard count >= 0, count <= remaining else { return false }
        offset += count
        return true
    }

    public mutating func float(_ what: @autoclosure () -> String) throws -> Float { Float(bitPattern: try integer(UInt32.self, what())) }
    public mutating func double(_ what: @autoclosure () -> String) throws -> Double { Double(bitPattern: try integer(UInt64.self, what())) }

    /// The next `count` bytes, without copying.
    public mutating func slice(_ count: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try require(count, for: what())
        let result = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return result
    }

    public mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws {
        try require(count, for: what())
        offset += count
    }
}

/// Strict UTF-8 decoding: nil for any invalid sequence (no replacement characters).
public func decodeUTF8(_ raw: UnsafeRawBufferPointer) -> String? {
    let units = raw.bindMemory(to: UInt8.self)
    guard let start = units.baseAddress, units.count > 0 else { return "" }
    // The repairing initializer is a non-generic fast path (unlike `String(validating:as:)`). Its
    // result is valid UTF-8 and keeps valid input as it is, so the input was valid exactly when
    // the result's bytes are the input's.
    let text = String(decoding: units, as: UTF8.self)
    guard text.utf8.count == units.count else { return nil }
    let same = text.utf8.withContiguousStorageIfAvailable { memcmp($0.baseAddress!, start, units.count) == 0 }
    return same ?? text.utf8.elementsEqual(units) ? text : nil
}

/// Byte offset of the first invalid UTF-8 sequence, or nil when all is valid: the
/// well-formed sequences of the Unicode Standard's table 3-7 (no overlong forms, no
/// surrogates, nothing above U+10FFFF).
public func firstInvalidUTF8(_ raw: UnsafeRawBufferPointer) -> Int? {
    let units = raw.bindMemory(to: UInt8.self)
    let count = units.count
    var index = 0
    while index < count {
        let lead = units[index]
        if lead < 0x80 {
            index += 1
            continue
        }
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF  // the second byte's range
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return index
        }
        guard index + length <= count else { return index }
        let second = units[index + 1]
        guard second >= low && second <= high else { return index }
        for k in 2..<length where units[index + k] & 0xC0 != 0x80 { return index }
        index += length
    }
    return nil
}
