import QuantaCore
import QuantaIO
import TestSupport
import XCTest

final class SafetensorsTests: XCTestCase {
    func testReadsTheBundledModel() throws {
        let file = try SafetensorsFile(path: TestSupport.austenModel + "/model.safetensors")
        XCTAssertEqual(file.tensors.count, 57)
        XCTAssertEqual(file.tensors.reduce(0) { $0 + $1.elementCount }, 6_819_072)
        XCTAssertEqual(file.metadata.map(\.0), ["format"])
        XCTAssertEqual(file.metadata.first?.1, "pt")
        let q = try file.info("model.layers.0.self_attn.q_proj.weight")
        XCTAssertEqual(q.dtype, .f32)
        XCTAssertEqual(q.shape, [256, 256])
        XCTAssertEqual(try file.info("model.layers.3.mlp.down_proj.weight").shape, [256, 768])
    }

    /// Values of a few tensors against numpy's reading of the same file.
    func testFloatValuesMatchPythonSafetensors() throws {
        let path = TestSupport.austenModel + "/model.safetensors"
        let names = ["model.norm.weight", "model.layers.5.self_attn.k_proj.weight", "lm_head.weight"]
        let output = try TestSupport.oracle("""
            import sys
            from safetensors.numpy import load_file
            t = load_file(sys.argv[1])
            for n in sys.argv[2:]:
                a = t[n].ravel()
                print(n, a.shape[0], a[0].view('uint32'), a[-1].view('uint32'), a[a.shape[0] // 3].view('uint32'), repr(float(a.astype('float64').sum())))
            """, [path] + names)
        let file = try SafetensorsFile(path: path)
        for line in output.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            let tensor = try file.floatTensor(f[0])
            XCTAssertEqual(tensor.count, Int(f[1]))
            XCTAssertEqual(tensor.storage.first?.bitPattern, UInt32(f[2]))
            XCTAssertEqual(tensor.storage.last?.bitPattern, UInt32(f[3]))
            XCTAssertEqual(tensor.storage[tensor.count / 3].bitPattern, UInt32(f[4]))
            XCTAssertEqual(tensor.storage.reduce(0.0) { $0 + Double($1) }, Double(f[5])!, accuracy: 1e-9)
        }
    }

    private func sampleEntries() throws -> [SafetensorsWriter.Entry] {
        func bytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
            values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        }
        let floats = try Tensor(shape: [2, 3], storage: [Float](arrayLiteral: 1, -2.5, 3.25, .infinity, 0, -0.0))
        return [
            try SafetensorsWriter.Entry(name: "z.f32", tensor: floats),
            try SafetensorsWriter.Entry(name: "a.f16", dtype: .f16, shape: [4],
                                        data: bytes([Float](arrayLiteral: 1, -2, 0.5, 65504).map(HalfConversion.floatToF16))),
            try SafetensorsWriter.Entry(name: "b.bf16", dtype: .bf16, shape: [2, 2],
                                        data: bytes([Float](arrayLiteral: 1, -2, 3.140625, 1e30).map(HalfConversion.floatToBF16))),
            try SafetensorsWriter.Entry(name: "c.i8", dtype: .i8, shape: [3], data: bytes([Int8](arrayLiteral: -128, 0, 127))),
            try SafetensorsWriter.Entry(name: "d.u8", dtype: .u8, shape: [1, 3], data: [0, 7, 255]),
            try SafetensorsWriter.Entry(name: "e.i32", dtype: .i32, shape: [2], data: bytes([Int32](arrayLiteral: -1, 0x1234_5678))),
            try SafetensorsWriter.Entry(name: "f.i64", dtype: .i64, shape: [2], data: bytes([Int64](arrayLiteral: .min, 42))),
            try SafetensorsWriter.Entry(name: "g.empty", dtype: .f32, shape: [0, 4], data: []),
        ]
    }

    func testWriteReadRoundTrip() throws {
        let folder = try TestSupport.temporaryFolder()
        let path = folder + "/sample.safetensors"
        try SafetensorsWriter.write(try sampleEntries(), metadata: ["format": "pt", "note": "quote \" and\nnewline"], to: path)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.metadata.map(\.0), ["format", "note"])
        XCTAssertEqual(file.metadata[1].1, "quote \" and\nnewline")
        XCTAssertEqual(try file.floatTensor("z.f32").storage.map(\.bitPattern),
                       [Float](arrayLiteral: 1, -2.5, 3.25, .infinity, 0, -0.0).map(\.bitPattern))
        XCTAssertEqual(try file.floatTensor("a.f16").storage, [1, -2, 0.5, 65504])
        XCTAssertEqual(try file.floatTensor("b.bf16").storage, [1, -2, 3.140625, HalfConversion.bf16ToFloat(HalfConversion.floatToBF16(1e30))])
        XCTAssertEqual(try file.floatTensor("b.bf16").shape, [2, 2])
        XCTAssertEqual(try file.integerTensor("c.i8", as: Int8.self).storage, [-128, 0, 127])
        XCTAssertEqual(try file.integerTensor("d.u8", as: UInt8.self).storage, [0, 7, 255])
        XCTAssertEqual(try file.integerTensor("e.i32", as: Int32.self).storage, [-1, 0x1234_5678])
        XCTAssertEqual(try file.integerTensor("f.i64", as: Int64.self).storage, [.min, 42])
        XCTAssertEqual(try file.floatTensor("g.empty").shape, [0, 4])
        XCTAssertThrowsError(try file.floatTensor("e.i32")) { error in
            XCTAssertEqual("\(error)", "\(path): tensor 'e.i32': dtype I32 is not a floating-point type; read it as integers")
        }
        XCTAssertThrowsError(try file.integerTensor("e.i32", as: Int64.self))
        let header = try TestSupport.read(path)
        XCTAssertEqual((8 + Int(header[0]) + Int(header[1]) << 8) % 8, 0, "header padded to 8 bytes")
    }

    /// Our writer's bytes equal the reference implementation's (Python `safetensors`) for the
    /// same tensors and metadata, and the reference reads our values back. (The reference keeps
    /// `__metadata__` in a hash map, so only a single key has a defined order there.)
    func testWriterBytesEqualReferenceImplementation() throws {
        let folder = try TestSupport.temporaryFolder()
        let ours = folder + "/ours.safetensors", theirs = folder + "/theirs.safetensors"
        try SafetensorsWriter.write(try sampleEntries().filter { $0.dtype != .bf16 }, metadata: ["format": "pt"], to: ours)
        _ = try TestSupport.oracle("""
            import sys, numpy as np
            from safetensors.numpy import save_file, load_file
            t = {
                "z.f32": np.array([[1, -2.5, 3.25], [np.inf, 0, -0.0]], dtype=np.float32),
                "a.f16": np.array([1, -2, 0.5, 65504], dtype=np.float16),
                "c.i8": np.array([-128, 0, 127], dtype=np.int8),
                "d.u8": np.array([[0, 7, 255]], dtype=np.uint8),
                "e.i32": np.array([-1, 0x12345678], dtype=np.int32),
                "f.i64": np.array([-2**63, 42], dtype=np.int64),
                "g.empty": np.zeros((0, 4), dtype=np.float32),
            }
            save_file(t, sys.argv[2], metadata={"format": "pt"})
            back = load_file(sys.argv[1])
            assert sorted(back) == sorted(t), sorted(back)
            for k in t:
                assert back[k].dtype == t[k].dtype and back[k].shape == t[k].shape, k
                assert back[k].tobytes() == t[k].tobytes(), k
            """, [ours, theirs])
        XCTAssertEqual(try TestSupport.read(ours), try TestSupport.read(theirs))
    }

    func testShardedFolder() throws {
        let folder = try TestSupport.temporaryFolder()
        let entries = try sampleEntries()
        try SafetensorsWriter.write(Array(entries.prefix(3)), to: folder + "/model-00001-of-00002.safetensors")
        try SafetensorsWriter.write(Array(entries.dropFirst(3)), to: folder + "/model-00002-of-00002.safetensors")
        func index(_ map: [(String, String)]) -> String {
            JSONValue.object([("metadata", .object([("total_size", .integer(100))])),
                              ("weight_map", .object(map.map { ($0.0, .string($0.1)) }))]).serialized(indent: 2)
        }
        var map = entries.prefix(3).map { ($0.name, "model-00001-of-00002.safetensors") }
            + entries.dropFirst(3).map { ($0.name, "model-00002-of-00002.safetensors") }
        let indexPath = folder + "/model.safetensors.index.json"
        try TestSupport.write(Array(index(map).utf8), to: indexPath)
        let collection = try SafetensorsCollection(index: indexPath)
        XCTAssertEqual(collection.shards.count, 2)
        XCTAssertEqual(collection.tensors.count, entries.count)
        XCTAssertEqual(try collection.integerTensor("f.i64", as: Int64.self).storage, [.min, 42])
        XCTAssertEqual(try collection.floatTensor("a.f16").storage, [1, -2, 0.5, 65504])

        map[0].1 = "model-00002-of-00002.safetensors"
        try TestSupport.write(Array(index(map).utf8), to: indexPath)
        XCTAssertThrowsError(try SafetensorsCollection(index: indexPath)) { error in
            XCTAssertEqual("\(error)", "\(indexPath): tensor 'z.f32' in model-00001-of-00002.safetensors is listed under model-00002-of-00002.safetensors")
        }
        map.removeFirst()
        try TestSupport.write(Array(index(map).utf8), to: indexPath)
        XCTAssertThrowsError(try SafetensorsCollection(index: indexPath)) { error in
            XCTAssertEqual("\(error)", "\(indexPath): tensor 'z.f32' in model-00001-of-00002.safetensors is not listed in weight_map")
        }
        map.append(("missing.weight", "model-00003-of-00002.safetensors"))
        try TestSupport.write(Array(index(map).utf8), to: indexPath)
        XCTAssertThrowsError(try SafetensorsCollection(index: indexPath)) { error in
            XCTAssertEqual((error as? QuantaError)?.kind, .notFound)
        }
    }

    func testWriterRefusesInconsistentEntries() {
        XCTAssertThrowsError(try SafetensorsWriter.Entry(name: "x", dtype: .f32, shape: [3], data: [0, 0, 0, 0])) { error in
            XCTAssertEqual("\(error)", "tensor 'x': shape [3] of F32 needs 12 bytes, got 4")
        }
    }
}
