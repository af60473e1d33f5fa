import QuantaCore
import QuantaIO
import TestSupport
import XCTest

final class HDF5StoreTests: XCTestCase {
    func testDatasetsAndAttributesRoundTrip() throws {
        let path = try TestSupport.temporaryFolder() + "/stats.h5"
        let floats = (0..<(300 * 257)).map { Float(sin(Double($0) * 0.001)) * 1e3 }
        let doubles = (0..<1000).map { 1.0 / Double($0 + 1) }
        let ints = (0..<10).map { Int64($0) * 1_000_000_007 - (1 << 62) }
        let store = try HDF5Store(path: path, mode: .create)
        try store.write("logits", floats, shape: [300, 257], attributes: [
            ("model", .string("austen-llama")), ("ctx", .int64(256)), ("ppl", .float64(75.2329)), ("empty", .string("")),
        ])
        try store.write("weights", doubles, shape: [10, 10, 10], compression: 9)
        try store.write("tokens", ints, shape: [10], compression: 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "appears only when closed")
        try store.close()

        let reader = try HDF5Store(path: path, mode: .read)
        XCTAssertEqual(try reader.datasetNames(), ["logits", "tokens", "weights"])
        let logits = try reader.read("logits", as: Float.self)
        XCTAssertEqual(logits.shape, [300, 257])
        XCTAssertEqual(logits.storage.map(\.bitPattern), floats.map(\.bitPattern))
        XCTAssertEqual(try reader.read("weights", as: Double.self).storage, doubles)
        XCTAssertEqual(try reader.read("weights", as: Double.self).shape, [10, 10, 10])
        XCTAssertEqual(try reader.read("tokens", as: Int64.self).storage, ints)
        let attributes = try reader.attributes(of: "logits")
        XCTAssertEqual(attributes.map(\.0), ["ctx", "empty", "model", "ppl"])
        XCTAssertEqual(attributes.map(\.1), [.int64(256), .string(""), .string("austen-llama"), .float64(75.2329)])
        XCTAssertThrowsError(try reader.read("logits", as: Double.self)) { error in
            XCTAssertEqual("\(error)", "\(path): dataset 'logits': holds float32, not float64")
        }
        XCTAssertThrowsError(try reader.read("missing", as: Float.self)) { error in
            XCTAssertEqual("\(error)", "\(path): dataset 'missing': no such dataset")
        }
        try reader.close()

        // h5py sees chunked, shuffled, deflated datasets with the same values.
        let output = try TestSupport.oracle("""
            import sys, h5py, numpy as np
            f = h5py.File(sys.argv[1], "r")
            d = f["logits"]
            print(d.dtype, d.shape, d.chunks is not None, d.compression, d.shuffle, float(np.asarray(d, dtype=np.float64).sum()))
            print(f["weights"].compression_opts, f["tokens"].compression, int(f["tokens"][3]))
            print(sorted((k, (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)) for k, v in d.attrs.items()))
            """, [path])
        let lines = output.split(separator: "\n").map(String.init)
        let sum = floats.reduce(0.0) { $0 + Double($1) }
        XCTAssertEqual(lines[0].split(separator: " ").prefix(6).joined(separator: " "), "float32 (300, 257) True gzip True")
        XCTAssertEqual(Double(lines[0].split(separator: " ").last!)!, sum, accuracy: 1e-6 * abs(sum) + 1e-6)
        XCTAssertEqual(lines[1], "9 None \(ints[3])")
        XCTAssertEqual(lines[2], "[('ctx', 256), ('empty', ''), ('model', 'austen-llama'), ('ppl', 75.2329)]")
    }

    func testCompressionShrinksRedundantData() throws {
        let folder = try TestSupport.temporaryFolder()
        let zeros = [Float](repeating: 0.5, count: 1 << 20)
        for (name, level) in [("raw", 0), ("packed", 6)] {
            let store = try HDF5Store(path: folder + "/\(name).h5", mode: .create)
            try store.write("x", zeros, shape: [1024, 1024], compression: level)
            try store.close()
        }
        let raw = try MappedFile(path: folder + "/raw.h5").count
        let packed = try MappedFile(path: folder + "/packed.h5").count
        XCTAssertGreaterThan(raw, 4 << 20)
        XCTAssertLessThan(packed, raw / 50)
    }

    func testNotAnHDF5File() throws {
        let path = try TestSupport.temporaryFolder() + "/fake.h5"
        try TestSupport.write(Array("not hdf5 at all".utf8), to: path)
        XCTAssertThrowsError(try HDF5Store(path: path, mode: .read)) { error in
            XCTAssertEqual("\(error)", "\(path): not an HDF5 file")
        }
    }
}
