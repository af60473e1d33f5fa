import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// llama-imatrix's protocol (`-c 256 --chunks 64` on calib-wiki, BOS on) against its golden file.
final class ImatrixTests: XCTestCase {
    func testSequentialChunksReproduceLlamaImatrix() throws {
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        let data = try CalibrationData(path: TestSupport.path("Calibration/calib-wiki.txt"))
        let tokenizer = try source.tokenizer()
        let sequences = try CalibrationSampler.sequential(context: 256, chunks: 64).sequences(data, tokenizer: tokenizer, bos: tokenizer.bosID)
        XCTAssertEqual(sequences.count, 64)
        let runner = try BlockRunner(source: source, sequences: sequences)
        runner.hessian = .diag
        runner.threads = 2
        runner.model.runtime = .llamacpp
        var all: [InputStatistics] = []
        try runner.run(onBlock: { all += $0.statistics; return nil }, onHead: { all.append($0) })
        let ours = ImatrixExport.matrix(all.map(\.sums), config: source.config, dataset: data.path, chunks: 64, chunkSize: 256)
        let golden = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        XCTAssertEqual(ours.entries.map(\.name), golden.entries.map(\.name))
        var worst: Float = 0, worstName = ""
        for (a, b) in zip(ours.entries, golden.entries) {
            XCTAssertEqual(a.counts, b.counts, a.name)
            for (x, y) in zip(a.sums, b.sums) {
                let relative = abs(x - y) / max(abs(y), 1e-30)
                if relative > worst { worst = relative; worstName = a.name }
            }
        }
        print("imatrix: largest relative difference \(worst) in \(worstName)")
        // The llamacpp runtime keeps K/V in f16 and takes their f32 bits from ggml's summation order:
        // without that, one BOS value of blk.0's V sits on an f16 rounding midpoint and rounds the
        // other way (4.4e-4 in blk.0.attn_output). llama-imatrix itself differs from this file by up
        // to 1.9e-5 on an AVX2 machine; the file is reproduced bit for bit only with AVX-512 kernels.
        XCTAssertLessThan(worst, 1e-4)

        // Quantizing with it: the blocks that come out as llama-quantize's with the golden matrix.
        for type in ["Q4_0", "Q4_1", "Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"] {
            let file = try GGUFFile(path: TestSupport.golden("imatrix-\(type).gguf"))
            var same = 0, blocks = 0
            for info in file.tensors {
                let values = try source.values(info.name)
                let bytes = try Quantization.quantize(info.type, values, rowLength: info.dimensions[0],
                                                      importance: ours.importance(for: info.name), threads: 2)
                let theirs = file.rawBytes(info), size = info.type.bytesPerBlock
                for b in 0..<(bytes.count / size) {
                    blocks += 1
                    if theirs[(b * size)..<((b + 1) * size)].elementsEqual(bytes[(b * size)..<((b + 1) * size)]) { same += 1 }
                }
            }
            print("imatrix \(type): \(same) of \(blocks) blocks identical to llama-quantize's with the golden matrix")
            XCTAssertGreaterThan(Double(same) / Double(blocks), 0.994, type)
        }
    }
}
