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
    String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self)
}

/// Byte offset of the first invalid UTF-8 sequence, or nil when all is valid.
public func firstInvalidUTF8(_ raw: UnsafeRawBufferPointer) -> Int? {
    let units = raw.bindMemory(to: UInt8.self)
    var index = 0
    while index < units.count {
        let lead = units[index]
        let length: Int
        switch lead {
        case 0x00...0x7F: length = 1
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return index
        }
        guard index + length <= units.count else { return index }
        if length > 1 {
            guard decodeUTF8(UnsafeRawBufferPointer(rebasing: raw[index..<(index + length)])) != nil else {
                return index
            }
        }
        index += length
    }
    return nil
}
