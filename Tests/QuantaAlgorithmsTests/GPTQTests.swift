import CBLAS
import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaModel
import TestSupport
import XCTest

/// GPTQ against round-to-nearest on the bundled model's layers, with Gram matrices from calibration.
final class GPTQTests: XCTestCase {
    /// tr((W - Q) H (W - Q)^T): the squared output error over the calibration inputs.
    func outputError(_ w: [Float], _ q: [Float], rows: Int, columns n: Int, gram: [Double]) -> Double {
        let e = (0..<(rows * n)).map { Double(w[$0] - q[$0]) }
        var eh = [Double](repeating: 0, count: rows * n)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(n), 1, e, Int32(n), gram, Int32(n), 0, &eh, Int32(n))
        return zip(e, eh).reduce(0) { $0 + $1.0 * $1.1 }
    }

    func testLossBelowRoundToNearestOnEveryLayer() throws {
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        let tokenizer = try source.tokenizer()
        let sequences = try CalibrationSampler.randomWindows(samples: 16, length: 128, seed: 0)
            .sequences(CalibrationData(path: TestSupport.path("Calibration/calib-wiki.txt")), tokenizer: tokenizer, bos: nil)
        let runner = try BlockRunner(source: source, sequences: sequences)
        var grams: [String: [Double]] = [:]
        try runner.run(onBlock: { block in
            for s in block.statistics { grams[s.name] = s.gram }
            return nil
        }, onHead: { _ in })
        var options = AffineQuantizer.Options()
        options.bits = 3
        options.groupSize = 128
        var compared = 0
        for tensor in source.tensors where tensor.dimensions.count == 2 && tensor.layer != nil {
            let role = try XCTUnwrap(tensor.role)
            let input: LinearInput = [.q, .k, .v].contains(role) ? .attentionQKV : role == .o ? .attentionOutput
                : [.gate, .up].contains(role) ? .ffnGateUp : .ffnDown
            let gram = try XCTUnwrap(grams["blk.\(tensor.layer!).\(input.rawValue)"])
            let (n, rows) = (tensor.dimensions[0], tensor.dimensions[1])
            let w = try source.values(tensor.name)
            var rtn = try AffineQuantizer(options: options, rows: rows, columns: n)
            var rounded = [Float](repeating: 0, count: rows * n)
            try w.withUnsafeBufferPointer { wb in
                // Round-to-nearest: the same grid, fitted on the original weights, no feedback.
                var column = [Float](repeating: 0, count: rows), q = [Float](repeating: 0, count: rows)
                for j in 0..<n {
                    rtn.prepare(column: j) { c in
                        column = (0..<rows).map { wb[$0 * n + c] }
                        return column.withUnsafeBufferPointer { $0.baseAddress! }
                    }
                    for r in 0..<rows { column[r] = wb[r * n + j] }
                    rtn.quantize(column: j, column, into: &q)
                    for r in 0..<rows { rounded[r * n + j] = q[r] }
                }
                var gptq = try AffineQuantizer(options: options, rows: rows, columns: n)
                let (quantized, report) = try GPTQ.solve(weight: wb, rows: rows, columns: n, gram: gram, options: GPTQOptions(), quantizer: &gptq)
                let ours = outputError(w, quantized, rows: rows, columns: n, gram: gram)
                let theirs = outputError(w, rounded, rows: rows, columns: n, gram: gram)
                XCTAssertLessThan(ours, theirs, tensor.name)
                XCTAssertEqual(report.deadColumns, 0)
                compared += 1
            }
        }
        XCTAssertEqual(compared, 6 * 7)
    }
}
