import QuantaCore
import QuantaIO
import TestSupport
import XCTest

/// A GGUF file assembled field by field, so tests can break any one of them.
struct RawGGUF {
    var magic: UInt32 = GGUFFile.magic
    var version: UInt32 = 3
    var tensorCount: UInt64?
    var metadataCount: UInt64?
    var metadata: [[UInt8]] = [RawGGUF.kv("general.architecture", type: 8, RawGGUF.string("llama"))]
    var tensors: [[UInt8]] = [RawGGUF.tensor("w", [32, 2], type: 0, offset: 0)]
    var dataBytes = 256
    var alignment = 32

    static func string(_ s: String) -> [UInt8] { string(Array(s.utf8)) }
    static func string(_ raw: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.integer(UInt64(raw.count))
        w.raw(raw)
        return w.bytes
    }
    static func kv(_ key: String, type: UInt32, _ payload: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.raw(string(key))
        w.integer(type)
        w.raw(payload)
        return w.bytes
    }
    static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func tensor(_ name: String, _ dims: [UInt64], type: UInt32, offset: UInt64) -> [UInt8] {
        var w = ByteWriter()
        w.raw(string(name))
        w.integer(UInt32(dims.count))
        for d in dims { w.integer(d) }
        w.integer(type)
        w.integer(offset)
        return w.bytes
    }

    var bytes: [UInt8] {
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

    func with(_ change: (inout RawGGUF) -> Void) -> RawGGUF {
        var copy = self
        change(&copy)
        return copy
    }
}

final class GGUFMalformedTests: XCTestCase {
    static let valid = RawGGUF()

    static let cases: [(name: String, bytes: [UInt8], message: String)] = [
        ("bad-magic", valid.with { $0.magic = 0x4C4D_4747 }.bytes, "bad magic 47 47 4d 4c: not a GGUF file"),
        ("truncated", Array(valid.bytes.prefix(6)), "truncated: version needs 4 bytes at offset 4 but the file has 2 left"),
        ("version", valid.with { $0.version = 4 }.bytes, "GGUF version 4 is not supported (Quanta reads versions 2 and 3)"),
        ("tensor-count", valid.with { $0.tensorCount = 1_000_000 }.bytes, "tensor count 1000000 runs past the end of the file (360 bytes left)"),
        ("metadata-count", valid.with { $0.metadataCount = 1 << 40 }.bytes, "metadata count 1099511627776 cannot fit in the 360 bytes left"),
        ("string-length", valid.with { $0.metadata = [RawGGUF.u32(0) + RawGGUF.u32(0x8000_0000) + RawGGUF.u32(8)] }.bytes,
         "string length 9223372036854775808 of key of metadata entry 0 at offset 24 overflows the file (320 bytes left)"),
        ("misaligned-offset", valid.with { $0.tensors = [RawGGUF.tensor("w", [32, 2], type: 0, offset: 4)] }.bytes,
         "tensor 'w': data offset 4 is not a multiple of the alignment 32"),
        ("duplicate-tensor", valid.with { $0.tensors += [RawGGUF.tensor("w", [32], type: 0, offset: 0)] }.bytes,
         "duplicate tensor name 'w'"),
        ("duplicate-key", valid.with { $0.metadata += $0.metadata }.bytes, "duplicate metadata key 'general.architecture'"),
        ("unknown-value-type", valid.with { $0.metadata = [RawGGUF.kv("k", type: 13, [0])] }.bytes,
         "metadata 'k' has unknown value type 13"),
        ("unknown-tensor-type", valid.with { $0.tensors = [RawGGUF.tensor("w", [32], type: 4, offset: 0)] }.bytes,
         "tensor 'w': unknown tensor type id 4"),
        ("too-many-dimensions", valid.with { $0.tensors = [RawGGUF.tensor("w", [1, 1, 1, 1, 1], type: 0, offset: 0)] }.bytes,
         "tensor 'w': has 5 dimensions; ggml allows 1 to 4"),
        ("data-past-end", valid.with { $0.dataBytes = 100 }.bytes,
         "tensor 'w': data [0, 256) runs past the end of the data section (100 bytes)"),
        ("bool-value", valid.with { $0.metadata.append(RawGGUF.kv("b", type: 7, [2])) }.bytes,
         "'b' is a bool with byte value 2, not 0 or 1"),
        ("invalid-utf8", valid.with { $0.metadata = [RawGGUF.string([0x61, 0xC3, 0x28]) + RawGGUF.u32(4) + RawGGUF.u32(1)] }.bytes,
         "key of metadata entry 0 at offset 32 is not valid UTF-8"),
        ("block-size", valid.with { $0.tensors = [RawGGUF.tensor("w", [33, 2], type: 2, offset: 0)] }.bytes,
         "tensor 'w': row length 33 is not a multiple of Q4_0's block size 32"),
        ("alignment", valid.with { $0.metadata.append(RawGGUF.kv("general.alignment", type: 4, RawGGUF.u32(48))) }.bytes,
         "general.alignment must be a u32 power of two, got 48"),
        ("overlap", valid.with { $0.tensors += [RawGGUF.tensor("v", [32], type: 0, offset: 128)] }.bytes,
         "tensors 'w' and 'v' overlap in the data section"),
        ("array-length", valid.with { $0.metadata.append(RawGGUF.kv("a", type: 9, RawGGUF.u32(8) + RawGGUF.string("").dropLast(8) + [255, 255, 255, 255, 0, 0, 0, 0])) }.bytes,
         "array 'a' claims 4294967295 elements of string, more than the 322 bytes left can hold"),
        ("name-too-long", valid.with { $0.tensors = [RawGGUF.tensor(String(repeating: "n", count: 64), [32], type: 0, offset: 0)] }.bytes,
         "tensor '\(String(repeating: "n", count: 64))': name is 64 bytes; ggml allows at most 63"),
    ]

    func testTheValidFixtureReads() throws {
        let path = try TestSupport.temporaryFolder() + "/valid.gguf"
        try TestSupport.write(GGUFMalformedTests.valid.bytes, to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.tensors, [GGUFTensorInfo(name: "w", dimensions: [32, 2], type: .f32, offset: 0)])
    }

    func testEachMalformedFileHasItsOwnError() throws {
        let folder = try TestSupport.temporaryFolder()
        var messages = Set<String>()
        for (name, bytes, message) in GGUFMalformedTests.cases {
            let path = folder + "/\(name).gguf"
            try TestSupport.write(bytes, to: path)
            XCTAssertThrowsError(try GGUFFile(path: path), name) { error in
                XCTAssertEqual((error as? QuantaError)?.kind, name == "version" ? .unsupported : .malformed, name)
                XCTAssertEqual("\(error)", "\(path): \(message)", name)
            }
            messages.insert(message)
        }
        XCTAssertEqual(messages.count, GGUFMalformedTests.cases.count)
    }
}
