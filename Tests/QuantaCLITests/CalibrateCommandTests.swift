import QuantaCalibration
import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// Captures one layer's down-projection inputs during a forward pass.
final class DownInputs: ForwardObserver {
    let layer: Int
    var rows: [Float] = []
    init(layer: Int) { self.layer = layer }
    func linearInput(layer: Int, role: LinearRole, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
        if layer == self.layer && role == .down { self.rows += x }
    }
    func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {}
}

/// `quanta calibrate` as a user runs it, its file checked with h5py and numpy.
final class CalibrateCommandTests: XCTestCase {
    func quanta(_ arguments: [String], environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> TestSupport.Run {
        try TestSupport.quanta(arguments, environment: environment, file: file, line: line)
    }

    func testStatisticsFileGramImatrixAndStats() throws {
        let folder = try TestSupport.temporaryFolder()
        let stats = folder + "/stats.h5", imatrix = folder + "/imatrix.gguf"
        let run = try quanta(["calibrate", TestSupport.austenModel, "--data", TestSupport.path("Calibration/calib-wiki.txt"),
                              "--samples", "6", "--seq-len", "80", "--seed", "5", "--out", stats, "--export-imatrix", imatrix, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try JSONParser.parse(Array(run.stdout.utf8))
        XCTAssertEqual(report["tokens"]?.intValue, 480)
        XCTAssertEqual(report["inputs"]?.intValue, 6 * 4 + 1)
        XCTAssertEqual(report["sampler"], .string("random-windows"))

        // The Gram matrix of blk.2.ffn_down against numpy on the inputs a full forward pass shows.
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        let tokenizer = try source.tokenizer()
        let sequences = try CalibrationSampler.randomWindows(samples: 6, length: 80, seed: 5)
            .sequences(CalibrationData(path: TestSupport.path("Calibration/calib-wiki.txt")), tokenizer: tokenizer, bos: nil)
        let observer = DownInputs(layer: 2)
        _ = try DecoderModel(path: TestSupport.austenModel).logits(sequences, observer: observer)
        XCTAssertEqual(observer.rows.count, 480 * 768)
        try observer.rows.withUnsafeBytes { try TestSupport.write(Array($0), to: folder + "/down.f32") }
        let check = try TestSupport.oracle("""
            import sys, h5py, numpy as np
            f = h5py.File(sys.argv[1], "r")
            x = np.fromfile(sys.argv[2], dtype=np.float32).reshape(480, 768).astype(np.float64)
            g = f["blk.2.ffn_down"]
            gram, s2 = g["gram"][...], g["sum_squares"][...]
            ref = x.T @ x
            print(np.abs(gram - ref).max() / np.abs(ref).max(), np.abs(s2 - (x * x).sum(0)).max() / s2.max(),
                  np.abs(np.diag(gram) - s2).max() / s2.max(), int(g.attrs["tokens"]), g.attrs["weights"].decode(),
                  f.attrs["sampler"].decode(), int(f.attrs["seed"]), len(f.keys()))
            """, [stats, folder + "/down.f32"]).split(separator: " ")
        XCTAssertLessThan(Double(check[0])!, 1e-5, "Gram vs numpy")
        XCTAssertLessThan(Double(check[1])!, 1e-5, "sum of squares vs numpy")
        XCTAssertLessThan(Double(check[2])!, 1e-6, "Gram diagonal vs sum of squares")
        XCTAssertEqual(check[3...].map(String.init), ["480", "blk.2.ffn_down.weight", "random-windows", "5", "25\n"])

        // The exported imatrix holds the same sums; quantize takes the statistics directly.
        let matrix = try ImportanceMatrix.read(imatrix)
        XCTAssertEqual(matrix.entries.count, 6 * 7)
        XCTAssertEqual(matrix.entries.first { $0.name == "blk.2.ffn_down.weight" }?.counts, [480])
        let viaStats = try quanta(["quantize", TestSupport.austenModel, folder + "/a.gguf", "Q4_K_M", "--stats", stats])
        XCTAssertEqual(viaStats.status, 0, viaStats.stderr)
        XCTAssertEqual(try quanta(["quantize", TestSupport.austenModel, folder + "/b.gguf", "Q4_K_M", "--imatrix", imatrix]).status, 0)
        XCTAssertEqual(try TestSupport.read(folder + "/a.gguf"), try TestSupport.read(folder + "/b.gguf"))

        // Statistics of other weights are refused, naming both checksums.
        let other = folder + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: TestSupport.austenModel + "/" + name, toPath: other + "/" + name)
        }
        var weights = try TestSupport.read(TestSupport.austenModel + "/model.safetensors")
        weights[weights.count - 1] ^= 1
        try TestSupport.write(weights, to: other + "/model.safetensors")
        let refused = try quanta(["quantize", other, folder + "/c.gguf", "Q4_K_M", "--stats", stats])
        XCTAssertEqual(refused.status, 64)
        XCTAssertTrue(refused.stderr.hasPrefix("quanta: error: \(stats): statistics were computed on weights with sha256 ab9d9986"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("but \(other) has sha256 "), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/c.gguf"))
    }

    /// `quantize --method gptq`: GPTQ through the GGUF blocks, the same plan as rounding, the same
    /// bytes at any thread count.
    func testGPTQIntoGGUF() throws {
        let folder = try TestSupport.temporaryFolder()
        let stats = folder + "/stats.h5"
        XCTAssertEqual(try quanta(["calibrate", TestSupport.austenModel, "--data", TestSupport.path("Calibration/calib-wiki.txt"),
                                   "--samples", "8", "--seq-len", "64", "--out", stats]).status, 0)
        var outputs: [String] = []
        for (method, threads) in [("rtn", "2"), ("gptq", "1"), ("gptq", "2")] {
            let output = "\(folder)/\(method)-\(threads).gguf"
            let run = try quanta(["quantize", TestSupport.austenModel, output, "Q4_K_M", "--stats", stats, "--method", method, "--threads", threads])
            XCTAssertEqual(run.status, 0, run.stderr)
            outputs.append(output)
        }
        let rtn = try GGUFFile(path: outputs[0]), gptq = try GGUFFile(path: outputs[1])
        XCTAssertEqual(rtn.tensors.map(\.type), gptq.tensors.map(\.type))
        XCTAssertNotEqual(try rtn.rawBytes("blk.0.ffn_down.weight").elementsEqual(try gptq.rawBytes("blk.0.ffn_down.weight")), true)
        XCTAssertEqual(try rtn.rawBytes("token_embd.weight").elementsEqual(try gptq.rawBytes("token_embd.weight")), true,
                       "the embedding has no calibration input: rounded as llama-quantize does")
        XCTAssertEqual(try TestSupport.read(outputs[1]), try TestSupport.read(outputs[2]))
        XCTAssertEqual(gptq["quanta.gptq.damp_percent"], .float32(0.01))
        XCTAssertEqual(gptq["quanta.gptq.damp_used_max"], .float32(0.01), "these Hessians factor at the asked dampening")
        XCTAssertEqual(gptq["quanta.gptq.true_sequential"], .bool(false))
        XCTAssertNil(rtn["quanta.gptq.damp_percent"])
        // True-sequential: calibration and GPTQ block by block in one run, the same plan.
        let sequential = try quanta(["quantize", TestSupport.austenModel, folder + "/seq.gguf", "Q4_K_M", "--method", "gptq",
                                     "--data", TestSupport.path("Calibration/calib-wiki.txt"), "--samples", "4", "--seq-len", "64"])
        XCTAssertEqual(sequential.status, 0, sequential.stderr)
        let seq = try GGUFFile(path: folder + "/seq.gguf")
        XCTAssertEqual(seq["quanta.gptq.true_sequential"], .bool(true))
        XCTAssertEqual(seq.tensors.map(\.type), rtn.tensors.map(\.type))
        XCTAssertFalse(try seq.rawBytes("blk.3.attn_v.weight").elementsEqual(try gptq.rawBytes("blk.3.attn_v.weight")))
        let missing = try quanta(["quantize", TestSupport.austenModel, folder + "/x.gguf", "Q4_K_M", "--method", "gptq"])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(missing.stderr.contains("--method gptq needs --stats (from quanta calibrate with --hessian full) or --data"), missing.stderr)
    }

    func testErrors() throws {
        let folder = try TestSupport.temporaryFolder()
        let both = try quanta(["calibrate", TestSupport.austenModel, "--data", "x.txt", "--out", folder + "/s.h5", "--samples", "2", "--ctx", "64"])
        XCTAssertEqual(both.status, 64)
        XCTAssertTrue(both.stderr.contains("give --samples N (random or --packed) or --ctx C (sequential chunks), one of them"), both.stderr)
        let missing = try quanta(["calibrate", TestSupport.austenModel, "--data", folder + "/none.txt", "--out", folder + "/s.h5", "--ctx", "64"])
        XCTAssertEqual(missing.status, 66)
        XCTAssertEqual(missing.stderr, "quanta: error: \(folder)/none.txt: no such file\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/s.h5"))
    }
}
