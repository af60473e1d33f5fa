import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// llama-imatrix's protocol (`-c 256 --chunks 64` on calib-wiki, BOS on) against its golden file.
final class ImatrixTests: XCTestCase {
    /// `quanta calibrate --runtime llamacpp --export-imatrix` writes llama-imatrix's file bit for
    /// bit: every operation of the forward pass in ggml's order (`GGMLOrder`: RMSNorm, RoPE, the
    /// tiled flash attention over f16 K/V, tinyBLAS's products, SwiGLU with AVX-512's exp) and
    /// llama-imatrix's float sums in its micro-batch order. `quanta quantize --pure --imatrix` with
    /// it then writes llama-quantize's golden files.
    func testSequentialChunksReproduceLlamaImatrix() throws {
        let folder = try TestSupport.temporaryFolder()
        let exported = folder + "/imatrix.gguf"
        let run = try TestSupport.quanta(["calibrate", TestSupport.austenModel, "--data", TestSupport.path("Calibration/calib-wiki.txt"),
                                          "--ctx", "256", "--chunks", "64", "--add-bos", "yes", "--runtime", "llamacpp", "--hessian", "diag",
                                          "--threads", "2", "--export-imatrix", exported, "--out", folder + "/stats.h5"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let ours = try ImportanceMatrix.read(exported)
        let golden = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        XCTAssertEqual(ours.entries.map(\.name), golden.entries.map(\.name))
        XCTAssertEqual(ours.entries.count, 42)
        for (a, b) in zip(ours.entries, golden.entries) {
            XCTAssertEqual(a.counts, b.counts, a.name)
            XCTAssertEqual(a.sums.map(\.bitPattern), b.sums.map(\.bitPattern), a.name)
        }
        for type in ["Q4_0", "Q4_1", "Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"] {
            let out = folder + "/\(type).gguf"
            let quantize = try TestSupport.quanta(["quantize", TestSupport.austenModel, out, type, "--pure", "--imatrix", exported])
            XCTAssertEqual(quantize.status, 0, quantize.stderr)
            let mine = try GGUFFile(path: out), theirs = try GGUFFile(path: TestSupport.golden("imatrix-\(type).gguf"))
            for info in theirs.tensors {
                let same = try mine.tensors.first { $0.name == info.name }.map { try mine.rawBytes($0).elementsEqual(try theirs.rawBytes(info)) }
                XCTAssertEqual(same, true, "\(type) \(info.name): llama-quantize's golden bytes")
            }
        }
    }

    /// The llamacpp runtime's ggml-order pass and llama-imatrix's float sums do not depend on the
    /// thread count (rows and heads are split, every value is computed whole by one thread).
    func testLlamaOrderDoesNotDependOnThreads() throws {
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        let data = try CalibrationData(path: TestSupport.path("Calibration/calib-wiki.txt"))
        let tokenizer = try source.tokenizer()
        let sequences = try CalibrationSampler.sequential(context: 256, chunks: 8).sequences(data, tokenizer: tokenizer, bos: tokenizer.bosID)
        var results: [[[UInt32]]] = []
        for threads in [1, 2, 3] {
            DecoderModel.threads = threads
            let runner = try BlockRunner(source: source, sequences: sequences)
            runner.hessian = .diag
            runner.threads = threads
            runner.model.runtime = .llamacpp
            runner.imatrixSums = true
            var sums: [[UInt32]] = []
            try runner.run(onBlock: { block in sums += block.statistics.map { $0.imatrixSums!.map(\.bitPattern) }; return nil }, onHead: { _ in })
            results.append(sums)
        }
        DecoderModel.threads = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        XCTAssertEqual(results[0].count, 24)
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
    }
}
