import QuantaCore
import QuantaIO
import TestSupport
import XCTest

final class GGUFTests: XCTestCase {
    func testReadsSmolLM2() throws {
        let file = try GGUFFile(path: try TestSupport.smolLM2())
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.tensors.count, 272)
        XCTAssertEqual(file.metadata.count, 33)
        XCTAssertEqual(file.alignment, 32)
        var counts: [GGMLType: Int] = [:]
        for tensor in file.tensors { counts[tensor.type, default: 0] += 1 }
        XCTAssertEqual(counts, [.q4_1: 210, .q8_0: 1, .f32: 61])
        XCTAssertEqual(file.tensors.reduce(0) { $0 + $1.elementCount }, 134_515_008)
        XCTAssertEqual(file["general.architecture"], .string("llama"))
        XCTAssertEqual(file["llama.attention.head_count_kv"], .uint32(3))
        XCTAssertEqual(file["llama.rope.freq_base"], .float32(100000))
        XCTAssertEqual(file["tokenizer.ggml.tokens"]?.arrayValue?.count, 49152)
        XCTAssertEqual(file["tokenizer.ggml.tokens"]?.arrayValue?[1], .string("<|im_start|>"))
        XCTAssertEqual(file["tokenizer.ggml.merges"]?.arrayValue?.count, 48900)
        XCTAssertEqual(file["tokenizer.ggml.token_type"]?.arrayValue?.count, 49152)
        let embedding = try file.info("token_embd.weight")
        XCTAssertEqual(embedding.dimensions, [576, 49152])
        XCTAssertEqual(embedding.type, .q8_0)
        XCTAssertEqual(embedding.byteCount, 576 * 49152 / 32 * 34)
    }

    func testRewritingSmolLM2GivesIdenticalBytes() throws {
        let source = try TestSupport.smolLM2()
        let output = try TestSupport.temporaryFolder() + "/copy.gguf"
        try GGUFWriter.copy(try GGUFFile(path: source), to: output)
        let original = try MappedFile(path: source)
        let copy = try MappedFile(path: output)
        XCTAssertEqual(copy.count, original.count)
        XCTAssertTrue(original.bytes.elementsEqual(copy.bytes), "rewritten file differs")
        try FileManager.default.removeItem(atPath: output)
    }

    static let everyValueType: [(key: String, value: GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("test.u8", .uint8(255)), ("test.i8", .int8(-128)), ("test.u16", .uint16(65535)), ("test.i16", .int16(-32768)),
        ("test.u32", .uint32(4_000_000_000)), ("test.i32", .int32(-2_000_000_000)), ("test.f32", .float32(-1.5)),
        ("test.bool", .bool(true)), ("test.string", .string("héllo \u{1F600}\n")), ("test.u64", .uint64(.max)),
        ("test.i64", .int64(.min)), ("test.f64", .float64(0.1)),
        ("test.array.i32", .array(.int32, [.int32(1), .int32(-2), .int32(3)])),
        ("test.array.string", .array(.string, [.string("a"), .string(""), .string("ü")])),
        ("test.array.empty", .array(.float32, [])),
        ("test.array.nested", .array(.array, [.array(.uint8, [.uint8(1), .uint8(2)]), .array(.uint8, [])])),
        ("general.alignment", .uint32(64)),
    ]

    func testWriterRoundTripsEveryValueType() throws {
        let path = try TestSupport.temporaryFolder() + "/values.gguf"
        let rows = (0..<4 * 64).map { Float($0) * 0.25 - 3 }
        let f32 = rows.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let q8 = [UInt8](repeating: 7, count: 2 * 34)
        try GGUFWriter.write(to: path, metadata: GGUFTests.everyValueType, tensors: [
            .init(name: "a.weight", dimensions: [64, 4], type: .f32, bytes: f32),
            .init(name: "b.weight", dimensions: [32, 2], type: .q8_0, bytes: q8),
        ])
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.metadata.map(\.key), GGUFTests.everyValueType.map(\.key))
        XCTAssertEqual(file.metadata.map(\.value), GGUFTests.everyValueType.map(\.value))
        XCTAssertEqual(file.tensors.map(\.offset), [0, 1024])
        XCTAssertEqual(file.dataOffset % 64, 0)
        XCTAssertTrue(try file.rawBytes("a.weight").elementsEqual(f32))
        XCTAssertTrue(try file.rawBytes("b.weight").elementsEqual(q8))
        XCTAssertEqual(try MappedFile(path: path).count, file.dataOffset + 1024 + 128, "last tensor padded to the alignment")

        // gguf-py reads the same values, types and tensors (it names no element type for an
        // empty array and shows a nested array's innermost type).
        let output = try TestSupport.oracle("""
            import sys, gguf
            r = gguf.GGUFReader(sys.argv[1])
            for k, f in r.fields.items():
                if k.startswith("GGUF."): continue
                print(k, "/".join(t.name for t in f.types), f.contents() if not k.endswith("nested") else len(f.data))
            for t in r.tensors:
                print(t.name, t.tensor_type.name, list(int(x) for x in t.shape), int(t.data_offset), int(t.n_bytes))
            """, [path])
        XCTAssertEqual(output.split(separator: "\n").map(String.init), [
            "general.architecture STRING llama",
            "test.u8 UINT8 255", "test.i8 INT8 -128", "test.u16 UINT16 65535", "test.i16 INT16 -32768",
            "test.u32 UINT32 4000000000", "test.i32 INT32 -2000000000", "test.f32 FLOAT32 -1.5", "test.bool BOOL True",
            "test.string STRING héllo \u{1F600}", "test.u64 UINT64 18446744073709551615", "test.i64 INT64 -9223372036854775808",
            "test.f64 FLOAT64 0.1", "test.array.i32 ARRAY/INT32 [1, -2, 3]", "test.array.string ARRAY/STRING ['a', '', 'ü']",
            "test.array.empty ARRAY []", "test.array.nested ARRAY/ARRAY/UINT8 2", "general.alignment UINT32 64",
            "a.weight F32 [64, 4] \(file.dataOffset) 1024", "b.weight Q8_0 [32, 2] \(file.dataOffset + 1024) 68",
        ])
    }

    /// A value known only after the tensors (what a quantizer did) replaces its placeholder in
    /// the header; one that does not fit its placeholder leaves no file.
    func testLateMetadataIsPatchedIntoTheHeader() throws {
        let folder = try TestSupport.temporaryFolder()
        let tensor = GGUFWriter.TensorEntry(name: "t", dimensions: [32], type: .q8_0, bytes: [UInt8](repeating: 1, count: 34))
        var written = false
        try GGUFWriter.write(to: folder + "/late.gguf", metadata: [("a", .string("x")), ("q.damp", .float32(0.01)), ("b", .uint8(3))],
                             tensors: [tensor], late: { written = true; return [("q.damp", .float32(0.0125))] })
        XCTAssertTrue(written)
        let file = try GGUFFile(path: folder + "/late.gguf")
        XCTAssertEqual(file.metadata.map(\.value), [.string("x"), .float32(0.0125), .uint8(3)])
        XCTAssertTrue(try file.rawBytes("t").elementsEqual([UInt8](repeating: 1, count: 34)))
        XCTAssertThrowsError(try GGUFWriter.write(to: folder + "/bad.gguf", metadata: [("q.note", .string("ab"))], tensors: [tensor],
                                                  late: { [("q.note", .string("abc"))] })) {
            XCTAssertEqual("\($0)", "metadata 'q.note': final value does not fit its placeholder")
        }
        XCTAssertEqual(FileSystem.kind(of: folder + "/bad.gguf"), .missing)
    }

    func testWriterRefusesInconsistentInput() throws {
        let path = try TestSupport.temporaryFolder() + "/bad.gguf"
        XCTAssertThrowsError(try GGUFWriter.write(to: path, metadata: [("x", .array(.int32, [.uint8(1)]))], tensors: [])) { error in
            XCTAssertEqual("\(error)", "metadata 'x': array of i32 holds a u8")
        }
        XCTAssertThrowsError(try GGUFWriter.write(to: path, metadata: [], tensors: [
            .init(name: "t", dimensions: [32], type: .q8_0, bytes: [1, 2, 3]),
        ])) { error in
            XCTAssertEqual("\(error)", "tensor 't': wrote 3 bytes, expected 34")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "no partial output")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent), [],
                       "temporary file removed")
    }
}
