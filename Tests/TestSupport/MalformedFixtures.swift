import QuantaCore
import QuantaIO

/// A GGUF file assembled field by field, so tests can break any one of them.
public struct RawGGUF: Sendable {
    public init() {}
    public var magic: UInt32 = GGUFFile.magic
    public var version: UInt32 = 3
    public var tensorCount: UInt64?
    public var metadataCount: UInt64?
    public var metadata: [[UInt8]] = [RawGGUF.kv("general.architecture", type: 8, RawGGUF.string("llama"))]
    public var tensors: [[UInt8]] = [RawGGUF.tensor("w", [32, 2], type: 0, offset: 0)]
    public var dataBytes = 256
    public var alignment = 32

    public static func string(_ s: String) -> [UInt8] { string(Array(s.utf8)) }
    public static func string(_ raw: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.integer(UInt64(raw.count))
        w.raw(raw)
        return w.bytes
    }
    public static func kv(_ key: String, type: UInt32, _ payload: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.raw(string(key))
        w.integer(type)
        w.raw(payload)
        return w.bytes
    }
    public static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    public static func tensor(_ name: String, _ dims: [UInt64], type: UInt32, offset: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.raw(string(name))
        w.integer(UInt32(dims.count))
        for d in dims { w.integer(d) }
        w.integer(type)
        w.integer(offset)
        return w.bytes
    }

    public var bytes: [UInt8] {
        var w = ByteWriter()
        w.integer(magic)
        w.integer(version)
        w.integer(tensorCount ?? UInt64(tensors.count))
        w.integer(metadataCount ?? UInt64(metadata.count))
        for entry in metadata { w.raw(entry) }
        for entry in tensors { w.raw(entry) }
        w.zeros((alignment - w.bytes.count % alignment) % alignment)
        w.zeros(dataBytes)
        return w.bytes
    }

    public func with(_ change: (inout RawGGUF) -> Void) -> RawGGUF {
        var copy = self
        change(&copy)
        return copy
    }
}

/// Malformed inputs, one broken promise each, with the exact message each must produce
/// (after "<path>: "). Shared by the reader tests and the `quanta inspect` tests.
public enum MalformedFixtures {
    /// A file from a header string and a data area of `dataBytes` bytes.
    public static func file(header: String, dataBytes: Int, headerLength: UInt64? = nil) -> [UInt8] {
        var writer = ByteWriter()
        let json = Array(header.utf8)
        writer.integer(headerLength ?? UInt64(json.count))
        writer.raw(json)
        writer.zeros(dataBytes)
        return writer.bytes
    }

    public static let safetensors: [(name: String, bytes: [UInt8], message: String)] = [
        ("truncated", [1, 2, 3], "file is 3 bytes, too short for the 8-byte header length"),
        ("header-past-end", file(header: "{}", dataBytes: 0, headerLength: 50), "header length 50 runs past the end of the file (10 bytes)"),
        ("header-too-large", file(header: "{}", dataBytes: 0, headerLength: 200_000_000), "header length 200000000 exceeds the 100 MB limit"),
        ("invalid-utf8", file(header: "{\"a\u{FFFD}\":1}", dataBytes: 0).enumerated().map { $0.offset == 11 ? 0xFF : $0.element },
         "header is not valid UTF-8 (byte 11)"),
        ("not-json", file(header: "{\"a\": [1, 2}", dataBytes: 0), "header is not valid JSON: expected ',' or ']' in array at byte 19"),
        ("not-object-start", file(header: "[1]", dataBytes: 0), "header does not start with '{'"),
        ("unknown-dtype", file(header: #"{"w":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8),
         "tensor 'w': unknown dtype 'F12'"),
        ("shape-size-mismatch", file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8),
         "tensor 'w': shape [3] of F32 needs 12 bytes but data_offsets span 8"),
        ("overlap", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, dataBytes: 12),
         "tensors 'a' and 'b' overlap (byte 4 of the data area is used twice)"),
        ("gap", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, dataBytes: 12),
         "gap in the data area: bytes 4..<8 belong to no tensor"),
        ("past-data-area", file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, dataBytes: 8),
         "tensor 'a' ends at byte 16, past the data area of 8 bytes"),
        ("trailing-bytes", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 12),
         "data area has 12 bytes but the tensors cover 4"),
        ("duplicate-name", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8),
         "header is not valid JSON: duplicate key 'a' at byte 62"),
        ("metadata-not-strings", file(header: #"{"__metadata__":{"n":1}}"#, dataBytes: 0), "__metadata__ value of 'n' is not a string"),
        ("offsets-reversed", file(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, dataBytes: 4),
         "tensor 'a': data_offsets [4, 0] end before they begin"),
        ("negative-shape", file(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataBytes: 4),
         "tensor 'a': shape holds -1, not a non-negative integer"),
        ("missing-offsets", file(header: #"{"a":{"dtype":"F32","shape":[1]}}"#, dataBytes: 4),
         "tensor 'a': data_offsets must be two non-negative integers [begin, end]"),
    ]

    public static let validGGUF = RawGGUF()

    public static let gguf: [(name: String, bytes: [UInt8], message: String)] = [
        ("bad-magic", validGGUF.with { $0.magic = 0x4C4D_4747 }.bytes, "bad magic 47 47 4d 4c: not a GGUF file"),
        ("truncated", Array(validGGUF.bytes.prefix(6)), "truncated: version needs 4 bytes at offset 4 but the file has 2 left"),
        ("version", validGGUF.with { $0.version = 4 }.bytes, "GGUF version 4 is not supported (Quanta reads versions 2 and 3)"),
        ("tensor-count", validGGUF.with { $0.tensorCount = 1_000_000 }.bytes, "tensor count 1000000 runs past the end of the file (360 bytes left)"),
        ("metadata-count", validGGUF.with { $0.metadataCount = 1 << 40 }.bytes, "metadata count 1099511627776 cannot fit in the 360 bytes left"),
        ("string-length", validGGUF.with { $0.metadata = [RawGGUF.u32(0) + RawGGUF.u32(0x8000_0000) + RawGGUF.u32(8)] }.bytes,
         "string length 9223372036854775808 of key of metadata entry 0 at offset 24 overflows the file (320 bytes left)"),
        ("misaligned-offset", validGGUF.with { $0.tensors = [RawGGUF.tensor("w", [32, 2], type: 0, offset: 4)] }.bytes,
         "tensor 'w': data offset 4 is not a multiple of the alignment 32"),
        ("duplicate-tensor", validGGUF.with { $0.tensors += [RawGGUF.tensor("w", [32], type: 0, offset: 0)] }.bytes,
         "duplicate tensor name 'w'"),
        ("duplicate-key", validGGUF.with { $0.metadata += $0.metadata }.bytes, "duplicate metadata key 'general.architecture'"),
        ("unknown-value-type", validGGUF.with { $0.metadata = [RawGGUF.kv("k", type: 13, [0])] }.bytes,
         "metadata 'k' has unknown value type 13"),
        ("unknown-tensor-type", validGGUF.with { $0.tensors = [RawGGUF.tensor("w", [32], type: 4, offset: 0)] }.bytes,
         "tensor 'w': unknown tensor type id 4"),
        ("too-many-dimensions", validGGUF.with { $0.tensors = [RawGGUF.tensor("w", [1, 1, 1, 1, 1], type: 0, offset: 0)] }.bytes,
         "tensor 'w': has 5 dimensions; ggml allows 1 to 4"),
        ("data-past-end", validGGUF.with { $0.dataBytes = 100 }.bytes,
         "tensor 'w': data [0, 256) runs past the end of the data section (100 bytes)"),
        ("bool-value", validGGUF.with { $0.metadata.append(RawGGUF.kv("b", type: 7, [2])) }.bytes,
         "'b' is a bool with byte value 2, not 0 or 1"),
        ("invalid-utf8", validGGUF.with { $0.metadata = [RawGGUF.string([0x61, 0xC3, 0x28]) + RawGGUF.u32(4) + RawGGUF.u32(1)] }.bytes,
         "key of metadata entry 0 at offset 32 is not valid UTF-8"),
        ("block-size", validGGUF.with { $0.tensors = [RawGGUF.tensor("w", [33, 2], type: 2, offset: 0)] }.bytes,
         "tensor 'w': row length 33 is not a multiple of Q4_0's block size 32"),
        ("alignment", validGGUF.with { $0.metadata.append(RawGGUF.kv("general.alignment", type: 4, RawGGUF.u32(48))) }.bytes,
         "general.alignment must be a u32 power of two, got 48"),
        ("overlap", validGGUF.with { $0.tensors += [RawGGUF.tensor("v", [32], type: 0, offset: 128)] }.bytes,
         "tensors 'w' and 'v' overlap in the data section"),
        ("array-length", validGGUF.with { $0.metadata.append(RawGGUF.kv("a", type: 9, RawGGUF.u32(8) + RawGGUF.string("").dropLast(8) + [255, 255, 255, 255, 0, 0, 0, 0])) }.bytes,
         "array 'a' claims 4294967295 elements of string, more than the 322 bytes left can hold"),
        // Array elements are read by a path that names them only on failure: its errors are the general path's.
        ("array-element-utf8", validGGUF.with { $0.metadata.append(RawGGUF.kv("a", type: 9, RawGGUF.u32(8) + [2, 0, 0, 0, 0, 0, 0, 0]
                                                                              + RawGGUF.string("ok") + RawGGUF.string([0x61, 0xC3, 0x28]))) }.bytes,
         "'a'[1] at offset 112 is not valid UTF-8"),
        ("array-element-bool", validGGUF.with { $0.metadata.append(RawGGUF.kv("a", type: 9, RawGGUF.u32(7) + [2, 0, 0, 0, 0, 0, 0, 0, 1, 2])) }.bytes,
         "'a'[1] is a bool with byte value 2, not 0 or 1"),
        ("array-element-length", validGGUF.with { $0.metadata.append(RawGGUF.kv("a", type: 9, RawGGUF.u32(8) + [1, 0, 0, 0, 0, 0, 0, 0]
                                                                                + [0, 0, 0, 0, 0, 1, 0, 0])) }.bytes,
         "string length 1099511627776 of 'a'[0] at offset 94 overflows the file (314 bytes left)"),
        ("name-too-long", validGGUF.with { $0.tensors = [RawGGUF.tensor(String(repeating: "n", count: 64), [32], type: 0, offset: 0)] }.bytes,
         "tensor '\(String(repeating: "n", count: 64))': name is 64 bytes; ggml allows at most 63"),
        // Found by Fuzz/Sources/fuzz-imatrix: the byte count of 2^62 F32 elements overflowed (a trap, not an error).
        ("byte-count-overflow", validGGUF.with { $0.tensors = [RawGGUF.tensor("w", [1 << 31, 1 << 31], type: 0, offset: 0)] }.bytes,
         "tensor 'w': 4611686018427387904 elements of F32 overflow a byte count"),
        ("offset-overflow", validGGUF.with { $0.tensors = [RawGGUF.tensor("w", [32], type: 0, offset: UInt64(Int64.max) / 32 * 32)] }.bytes,
         "tensor 'w': data at offset 9223372036854775776 of 128 bytes runs past the end of the data section (256 bytes)"),
    ]

}
