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

    /// One level of groups with attributes, root attributes, and datasets inside groups, as a
    /// statistics file holds them; h5py sees the same names, values and dtypes.
    func testGroupsAndRootAttributesRoundTrip() throws {
        let path = try TestSupport.temporaryFolder() + "/grouped.h5"
        let layer = "model.layers.0.mlp.down_proj"
        let xtx = (0..<16).map { Float($0) * 0.25 - 1 }
        let mean = (0..<4).map { Double($0) / 3 }
        let counts: [Int64] = [7, -3, 1 << 40, 0, 5, 6]
        let store = try HDF5Store(path: path, mode: .create)
        try store.setRootAttributes([("format", .string("quanta-stats")), ("version", .int64(1)), ("tokens", .int64(100))])
        try store.setRootAttributes([("version", .int64(2))])
        try store.write("ids", [Int64](0..<5), shape: [5])
        try store.createGroup(layer, attributes: [("in_features", .int64(4)), ("scale", .float64(0.5)), ("kind", .string("linear"))])
        try store.createGroup("lm_head", attributes: [("kind", .string("head"))])
        try store.createGroup("empty")
        try store.write("\(layer)/xtx", xtx, shape: [4, 4], attributes: [("samples", .int64(12))])
        try store.write("\(layer)/mean", mean, shape: [4])
        try store.write("lm_head/counts", counts, shape: [2, 3], compression: 0)

        let nameRule = "name must be 'dataset' or 'group/dataset', each part non-empty and not '.'"
        XCTAssertThrowsError(try store.write("missing/x", mean, shape: [4])) { error in
            XCTAssertEqual("\(error)", "\(path): dataset 'missing/x': no such group 'missing'")
        }
        XCTAssertThrowsError(try store.write("ids/x", mean, shape: [4])) { error in
            XCTAssertEqual("\(error)", "\(path): dataset 'ids/x': no such group 'ids'")
        }
        XCTAssertThrowsError(try store.write("lm_head/counts/x", mean, shape: [4])) { error in
            XCTAssertEqual("\(error)", "\(path): dataset 'lm_head/counts/x': \(nameRule)")
        }
        for bad in ["/x", "lm_head/", "", "."] {
            XCTAssertThrowsError(try store.write(bad, mean, shape: [4])) { error in
                XCTAssertEqual("\(error)", "\(path): dataset '\(bad)': \(nameRule)")
            }
        }
        XCTAssertThrowsError(try store.write("lm_head/counts", mean, shape: [4])) { error in
            XCTAssertEqual("\(error)", "\(path): dataset 'lm_head/counts': already exists")
        }
        XCTAssertThrowsError(try store.createGroup("lm_head")) { error in
            XCTAssertEqual("\(error)", "\(path): group 'lm_head': already exists")
        }
        XCTAssertThrowsError(try store.createGroup("ids")) { error in
            XCTAssertEqual("\(error)", "\(path): group 'ids': already exists")
        }
        XCTAssertThrowsError(try store.createGroup("a/b")) { error in
            XCTAssertEqual("\(error)", "\(path): group 'a/b': name must be non-empty, without '/' and not '.'")
        }
        XCTAssertThrowsError(try store.createGroup("dup", attributes: [("k", .int64(1)), ("k", .int64(2))])) { error in
            XCTAssertEqual("\(error)", "\(path): group 'dup': attribute 'k' is given twice")
        }
        XCTAssertThrowsError(try store.setRootAttributes([("", .int64(1))])) { error in
            XCTAssertEqual("\(error)", "\(path): root group: attribute key '' must be non-empty without NUL")
        }
        try store.close()

        let reader = try HDF5Store(path: path, mode: .read)
        XCTAssertEqual(try reader.datasetNames(), ["ids"], "root datasets only")
        XCTAssertEqual(try reader.groupNames(), ["empty", "lm_head", layer])
        XCTAssertEqual(try reader.datasetNames(in: layer), ["mean", "xtx"])
        XCTAssertEqual(try reader.datasetNames(in: "lm_head"), ["counts"])
        XCTAssertEqual(try reader.datasetNames(in: "empty"), [])
        let root = try reader.rootAttributes()
        XCTAssertEqual(root.map(\.0), ["format", "tokens", "version"])
        XCTAssertEqual(root.map(\.1), [.string("quanta-stats"), .int64(100), .int64(2)])
        let layerAttributes = try reader.attributes(ofGroup: layer)
        XCTAssertEqual(layerAttributes.map(\.0), ["in_features", "kind", "scale"])
        XCTAssertEqual(layerAttributes.map(\.1), [.int64(4), .string("linear"), .float64(0.5)])
        XCTAssertEqual(try reader.attributes(ofGroup: "lm_head").map(\.1), [.string("head")])
        XCTAssertEqual(try reader.attributes(ofGroup: "empty").count, 0)
        let readXtx = try reader.read("\(layer)/xtx", as: Float.self)
        XCTAssertEqual(readXtx.shape, [4, 4])
        XCTAssertEqual(readXtx.storage, xtx)
        XCTAssertEqual(try reader.read("\(layer)/mean", as: Double.self).storage, mean)
        XCTAssertEqual(try reader.read("lm_head/counts", as: Int64.self).storage, counts)
        let countsInfo = try reader.info("lm_head/counts")
        XCTAssertEqual([countsInfo.name, countsInfo.type.rawValue, "\(countsInfo.shape)"], ["lm_head/counts", "int64", "[2, 3]"])
        XCTAssertEqual(try reader.info("\(layer)/mean").shape, [4])
        let xtxAttributes = try reader.attributes(of: "\(layer)/xtx")
        XCTAssertEqual(xtxAttributes.map(\.0), ["samples"])
        XCTAssertEqual(xtxAttributes.map(\.1), [.int64(12)])
        XCTAssertEqual(try reader.read("ids", as: Int64.self).storage, [0, 1, 2, 3, 4])

        let reads: [(String, String)] = [
            ("lm_head/missing", "\(path): dataset 'lm_head/missing': no such dataset"),
            ("missing/counts", "\(path): dataset 'missing/counts': no such dataset"),
            ("ids/x", "\(path): dataset 'ids/x': no such dataset"),
            ("lm_head", "\(path): dataset 'lm_head': is not a dataset"),
            ("a/b/c", "\(path): dataset 'a/b/c': \(nameRule)"),
        ]
        for (name, message) in reads {
            XCTAssertThrowsError(try reader.read(name, as: Float.self)) { XCTAssertEqual("\($0)", message) }
            XCTAssertThrowsError(try reader.info(name)) { XCTAssertEqual("\($0)", message) }
            XCTAssertThrowsError(try reader.attributes(of: name)) { XCTAssertEqual("\($0)", message) }
        }
        XCTAssertThrowsError(try reader.read("\(layer)/xtx", as: Double.self)) { error in
            XCTAssertEqual("\(error)", "\(path): dataset '\(layer)/xtx': holds float32, not float64")
        }
        XCTAssertThrowsError(try reader.datasetNames(in: "missing")) { XCTAssertEqual("\($0)", "\(path): group 'missing': no such group") }
        XCTAssertThrowsError(try reader.attributes(ofGroup: "ids")) { XCTAssertEqual("\($0)", "\(path): group 'ids': no such group") }
        XCTAssertThrowsError(try reader.setRootAttributes([("x", .int64(1))])) { error in
            XCTAssertEqual("\(error)", "\(path): root group: store is open for reading")
        }
        XCTAssertThrowsError(try reader.createGroup("new")) { XCTAssertEqual("\($0)", "\(path): group 'new': store is open for reading") }
        try reader.close()

        let output = try TestSupport.oracle("""
            import sys, h5py
            f = h5py.File(sys.argv[1], "r")
            def attrs(o):
                return sorted((k, v.decode() if isinstance(v, bytes) else v.item()) for k, v in o.attrs.items())
            print(attrs(f))
            print(sorted(f.keys()), sorted(f["\(layer)"].keys()))
            print(attrs(f["\(layer)"]))
            print(attrs(f["lm_head"]))
            for name in ["\(layer)/xtx", "\(layer)/mean", "lm_head/counts"]:
                d = f[name]
                print(name, d.dtype, d.shape, d[...].ravel().tolist())
            print(attrs(f["\(layer)/xtx"]))
            """, [path])
        XCTAssertEqual(output.split(separator: "\n").map(String.init), [
            "[('format', 'quanta-stats'), ('tokens', 100), ('version', 2)]",
            "['empty', 'ids', 'lm_head', '\(layer)'] ['mean', 'xtx']",
            "[('in_features', 4), ('kind', 'linear'), ('scale', 0.5)]",
            "[('kind', 'head')]",
            "\(layer)/xtx float32 (4, 4) \(xtx.map(Double.init))",
            "\(layer)/mean float64 (4,) \(mean)",
            "lm_head/counts int64 (2, 3) \(counts)",
            "[('samples', 12)]",
        ])
    }

    /// A file h5py wrote: variable-length string attributes, non-scalar and boolean attributes
    /// (left out), soft and external links (neither listed nor followed), a nested group (not
    /// listed), and names longer than the store accepts (refused before they size anything).
    func testReadsWhatH5pyWrites() throws {
        let folder = try TestSupport.temporaryFolder()
        _ = try TestSupport.oracle("""
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1] + "/py.h5", "w") as f:
                f.attrs["tool"] = "h5py"
                f.attrs["ratio"] = np.float32(0.25)
                f.attrs["small"] = np.int32(-7)
                f.attrs["vector"] = [1, 2, 3]
                f.attrs["flag"] = True
                g = f.create_group("layer")
                g.attrs["name"] = "q_proj ü"
                g.create_dataset("w", data=np.arange(6, dtype=np.float32).reshape(2, 3))
                g.create_dataset("i32", data=np.arange(3, dtype=np.int32))
                g.create_group("nested").create_dataset("deep", data=np.zeros(2))
                g["soft"] = h5py.SoftLink("/layer/w")
                f["alias"] = h5py.SoftLink("/layer")
                f["outside"] = h5py.ExternalLink("elsewhere.h5", "/x")
                f.create_dataset("top", data=np.ones(2))
            with h5py.File(sys.argv[1] + "/long.h5", "w") as f:
                f.attrs["k" * 5000] = 1
                f.create_dataset("n" * 5000, data=np.ones(1))
            """, [folder])
        let path = folder + "/py.h5"
        let reader = try HDF5Store(path: path, mode: .read)
        let root = try reader.rootAttributes()
        XCTAssertEqual(root.map(\.0), ["ratio", "small", "tool"])
        XCTAssertEqual(root.map(\.1), [.float64(0.25), .int64(-7), .string("h5py")])
        XCTAssertEqual(try reader.groupNames(), ["layer"])
        XCTAssertEqual(try reader.datasetNames(), ["top"])
        XCTAssertEqual(try reader.datasetNames(in: "layer"), ["i32", "w"])
        XCTAssertEqual(try reader.attributes(ofGroup: "layer").map(\.1), [.string("q_proj ü")])
        XCTAssertEqual(try reader.read("layer/w", as: Float.self).storage, [0, 1, 2, 3, 4, 5])
        XCTAssertThrowsError(try reader.info("layer/i32")) { error in
            XCTAssertEqual("\(error)", "\(path): dataset 'layer/i32': element type is not float32, float64 or int64")
        }
        for name in ["layer/soft", "alias/w", "outside"] {
            XCTAssertThrowsError(try reader.read(name, as: Float.self)) { XCTAssertEqual("\($0)", "\(path): dataset '\(name)': no such dataset") }
        }
        XCTAssertThrowsError(try reader.datasetNames(in: "alias")) { XCTAssertEqual("\($0)", "\(path): group 'alias': no such group") }
        try reader.close()

        let long = try HDF5Store(path: folder + "/long.h5", mode: .read)
        XCTAssertThrowsError(try long.datasetNames()) { error in
            XCTAssertEqual("\(error)", "\(folder)/long.h5: link 0 of the root group has a name of 5000 bytes (1...4096 allowed)")
        }
        XCTAssertThrowsError(try long.rootAttributes()) { error in
            XCTAssertEqual("\(error)", "\(folder)/long.h5: root group: attribute 0 has a name of 5000 bytes (1...4096 allowed)")
        }
        try long.close()
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

    /// A file of a few kilobytes can declare a dataset of a terabyte (chunks never written, or
    /// compressed): reading it must not allocate what the file cannot hold. A deflated dataset
    /// of zeros (1000:1 here) still reads.
    func testDeclaredSizeBeyondWhatTheFileStores() throws {
        let folder = try TestSupport.temporaryFolder()
        _ = try TestSupport.oracle("""
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1] + "/huge.h5", "w") as f:
                f.create_dataset("tokens", shape=(2**37,), dtype="i8", chunks=(4096,), compression="gzip")
                f.create_dataset("zeros", data=np.zeros(1 << 20, dtype="f8"), chunks=(1 << 17,), compression="gzip", compression_opts=9)
            """, [folder])
        let store = try HDF5Store(path: folder + "/huge.h5", mode: .read)
        defer { try? store.close() }
        XCTAssertEqual(try store.info("tokens").shape, [1 << 37])
        XCTAssertThrowsError(try store.read("tokens", as: Int64.self)) { error in
            XCTAssertEqual("\(error)", "\(folder)/huge.h5: dataset 'tokens': shape [137438953472] needs 1099511627776 bytes but the file stores only 0 for it")
        }
        XCTAssertEqual(try store.read("zeros", as: Double.self).storage, [Double](repeating: 0, count: 1 << 20))
    }

    func testNotAnHDF5File() throws {
        let path = try TestSupport.temporaryFolder() + "/fake.h5"
        try TestSupport.write(Array("not hdf5 at all".utf8), to: path)
        XCTAssertThrowsError(try HDF5Store(path: path, mode: .read)) { error in
            XCTAssertEqual("\(error)", "\(path): not an HDF5 file")
        }
    }
}
