import CBLAS
import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaFormats
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

    /// The bundled model and the Gram matrix of each of its linear inputs on 16 x 128 tokens of calib-wiki.
    static func calibrated() throws -> (HuggingFaceSource, [String: [Double]]) {
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
        return (source, grams)
    }

    static func gram(_ tensor: SourceTensor, _ grams: [String: [Double]]) throws -> [Double] {
        let role = try XCTUnwrap(tensor.role)
        let input: LinearInput = [.q, .k, .v].contains(role) ? .attentionQKV : role == .o ? .attentionOutput
            : [.gate, .up].contains(role) ? .ffnGateUp : .ffnDown
        return try XCTUnwrap(grams["blk.\(tensor.layer!).\(input.rawValue)"])
    }

    /// GPTQ's feedback through GGUF blocks beats llama-quantize's importance-weighted rounding
    /// (importance = the same calibration's sums of x^2) on every layer.
    /// A Gram matrix that is not positive definite (eigenvalues 3 and -1): the dampening rises in
    /// steps of 0.0025 of the mean diagonal until the factorization succeeds, and says so.
    func testDampeningRisesWhenTheFactorizationFails() throws {
        var options = GPTQOptions()
        options.damp = 0.01
        let factorization = try GPTQ.factorize(gram: [1, 2, 2, 1], columns: 2, options: options)
        XCTAssertGreaterThan(factorization.damp, 1)
        XCTAssertLessThan(factorization.damp, 1.0025 + 1e-9)
        let healthy = try GPTQ.factorize(gram: [2, 1, 1, 2], columns: 2, options: options)
        XCTAssertEqual(healthy.damp, 0.01)
        let cache = FactorizationCache()
        _ = cache.factorization("a", layer: 0) { factorization }
        _ = cache.factorization("b", layer: 0) { healthy }
        XCTAssertEqual(cache.maxDamp, factorization.damp)
    }

    func testGGUFFeedbackBeatsImportanceRounding() throws {
        let (source, grams) = try GPTQTests.calibrated()
        for type in [GGMLType.q4_K, .q3_K, .q2_K, .q4_0] {
            let format = try XCTUnwrap(BlockFormats.format(type))
            var wins = 0, layers = 0, ours = 0.0, theirs = 0.0
            for tensor in source.tensors where tensor.dimensions.count == 2 && tensor.layer != nil {
                let gram = try GPTQTests.gram(tensor, grams)
                let (n, rows) = (tensor.dimensions[0], tensor.dimensions[1])
                let importance = (0..<n).map { Float(gram[$0 * n + $0]) }
                let w = try source.values(tensor.name)
                let rounded = try Quantization.dequantize(type, Quantization.quantize(type, w, rowLength: n, importance: importance)
                    .withUnsafeBytes { $0 }, count: w.count)
                var quantizer = try w.withUnsafeBufferPointer {
                    try GGUFBlockQuantizer(format: format, rows: rows, columns: n, importance: importance, original: $0)
                }
                let (solved, _) = try w.withUnsafeBufferPointer {
                    try GPTQ.solve(weight: $0, rows: rows, columns: n, gram: gram, options: GPTQOptions(), quantizer: &quantizer)
                }
                let bytes = quantizer.finish()
                let decoded = try bytes.withUnsafeBytes { try Quantization.dequantize(type, $0, count: w.count) }
                XCTAssertEqual(decoded, solved, "\(type.name) \(tensor.name): the file decodes to what GPTQ rounded to")
                let a = outputError(w, decoded, rows: rows, columns: n, gram: gram), b = outputError(w, rounded, rows: rows, columns: n, gram: gram)
                ours += a; theirs += b; layers += 1
                if a < b { wins += 1 }
            }
            print("GPTQ-GGUF \(type.name): output error \(ours) vs importance rounding \(theirs) (\(wins) of \(layers) layers lower)")
            XCTAssertLessThan(ours, theirs, type.name)
            XCTAssertEqual(wins, layers, type.name)
        }
    }

    /// With act order the blocks are fitted up front from the original weights; feedback still wins.
    func testGGUFFeedbackWithActOrder() throws {
        let (source, grams) = try GPTQTests.calibrated()
        let format = try XCTUnwrap(BlockFormats.format(.q4_K))
        var options = GPTQOptions()
        options.actOrder = true
        for tensor in source.tensors where tensor.layer == 1 && tensor.dimensions.count == 2 {
            let gram = try GPTQTests.gram(tensor, grams)
            let (n, rows) = (tensor.dimensions[0], tensor.dimensions[1])
            let importance = (0..<n).map { Float(gram[$0 * n + $0]) }
            let w = try source.values(tensor.name)
            let rounded = try Quantization.dequantize(.q4_K, Quantization.quantize(.q4_K, w, rowLength: n, importance: importance)
                .withUnsafeBytes { $0 }, count: w.count)
            var quantizer = try w.withUnsafeBufferPointer { try GGUFBlockQuantizer(format: format, rows: rows, columns: n, importance: importance, original: $0) }
            let (solved, report) = try w.withUnsafeBufferPointer { try GPTQ.solve(weight: $0, rows: rows, columns: n, gram: gram, options: options, quantizer: &quantizer) }
            XCTAssertNotEqual(report.order, Array(0..<n))
            let decoded = try quantizer.finish().withUnsafeBytes { try Quantization.dequantize(.q4_K, $0, count: w.count) }
            XCTAssertEqual(decoded, solved, tensor.name)
            XCTAssertLessThan(outputError(w, decoded, rows: rows, columns: n, gram: gram), outputError(w, rounded, rows: rows, columns: n, gram: gram), tensor.name)
        }
    }

    func testLossBelowRoundToNearestOnEveryLayer() throws {
        let (source, grams) = try GPTQTests.calibrated()
        var options = AffineQuantizer.Options()
        options.bits = 3
        options.groupSize = 128
        var compared = 0
        for tensor in source.tensors where tensor.dimensions.count == 2 && tensor.layer != nil {
            let gram = try GPTQTests.gram(tensor, grams)
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

/// GPTQ against a numpy transcription of the IST-DASLab reference (`gptq.py`, `quant.py`).
final class GPTQReferenceTests: XCTestCase {
    func check(actOrder: Bool, symmetric: Bool, staticGroups: Bool = false) throws {
        let rows = 24, n = 160
        var generator = SeededGenerator(seed: 11)
        func normal() -> Float {
            let u = Float(generator.below(1 << 24) + 1) / Float(1 << 24), v = Float(generator.below(1 << 24)) / Float(1 << 24)
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        let w = (0..<(rows * n)).map { _ in normal() }
        let x = (0..<(300 * n)).map { i in normal() * (1 + Float(i % n) / 40) }
        var gram = [Double](repeating: 0, count: n * n)
        for t in 0..<300 { for i in 0..<n { for j in 0..<n { gram[i * n + j] += Double(x[t * n + i]) * Double(x[t * n + j]) } } }
        var options = AffineQuantizer.Options()
        options.bits = 3
        options.groupSize = 32
        options.symmetric = symmetric
        options.staticGroups = staticGroups
        var solver = GPTQOptions()
        solver.actOrder = actOrder
        let (ours, report) = try w.withUnsafeBufferPointer { wb in
            var quantizer = try AffineQuantizer(options: options, rows: rows, columns: n, original: wb)
            return try GPTQ.solve(weight: wb, rows: rows, columns: n, gram: gram, options: solver, quantizer: &quantizer)
        }
        let folder = try TestSupport.temporaryFolder()
        try w.withUnsafeBytes { try TestSupport.write(Array($0), to: folder + "/w.f32") }
        try gram.withUnsafeBytes { try TestSupport.write(Array($0), to: folder + "/h.f64") }
        let output = try TestSupport.oracle("""
            import sys, numpy as np
            rows, n, bits, gs = 24, 160, 3, 32
            act, sym, static = sys.argv[3] == "1", sys.argv[4] == "1", sys.argv[5] == "1"
            W = np.fromfile(sys.argv[1], np.float32).reshape(rows, n).copy()
            H = np.fromfile(sys.argv[2], np.float64).reshape(n, n).copy()
            maxq = 2 ** bits - 1
            def find_params(x):
                xmin = np.minimum(x.min(1), 0); xmax = np.maximum(x.max(1), 0)
                if sym:
                    xmax = np.maximum(np.abs(xmin), xmax); xmin = np.where(xmin < 0, -xmax, xmin)
                both = (xmin == 0) & (xmax == 0); xmin[both] = -1; xmax[both] = 1
                scale = ((xmax - xmin) / maxq).astype(np.float32)
                zero = np.full_like(scale, (maxq + 1) / 2) if sym else np.round(-xmin / scale).astype(np.float32)
                return scale, zero
            def quant(x, p):
                scale, zero = p
                q = np.clip(np.round(x / scale) + zero, 0, maxq)
                return (scale * (q - zero)).astype(np.float32)
            groups = [find_params(W[:, i:i + gs]) for i in range(0, n, gs)] if static else None
            dead = np.diag(H) == 0; H[dead, dead] = 1; W[:, dead] = 0
            perm = np.argsort(-np.diag(H), kind="stable") if act else np.arange(n)
            W = W[:, perm]; H = H[perm][:, perm]
            H[np.diag_indices(n)] += 0.01 * np.mean(np.diag(H))
            Linv = np.linalg.inv(np.linalg.cholesky(H))
            U = np.linalg.cholesky(Linv.T @ Linv).T.astype(np.float32)
            Q = np.zeros_like(W); loss = 0.0; params = None
            for i1 in range(0, n, 128):
                i2 = min(i1 + 128, n); W1 = W[:, i1:i2].copy(); Err1 = np.zeros_like(W1)
                for i in range(i2 - i1):
                    w = W1[:, i]; d = U[i1 + i, i1 + i]
                    if static:
                        params = groups[perm[i1 + i] // gs]
                    elif (i1 + i) % gs == 0:
                        params = find_params(W[:, i1 + i:i1 + i + gs])
                    q = quant(w, params)
                    Q[:, i1 + i] = q; loss += float(((w - q) ** 2 / d ** 2).sum()) / 2
                    err = (w - q) / d
                    W1[:, i:] -= np.outer(err, U[i1 + i, i1 + i:i2])
                    Err1[:, i] = err
                W[:, i2:] -= Err1 @ U[i1:i2, i2:]
            Q = Q[:, np.argsort(perm)]
            Q.astype(np.float32).tofile(sys.argv[6])
            print(repr(loss))
            """, [folder + "/w.f32", folder + "/h.f64", actOrder ? "1" : "0", symmetric ? "1" : "0", staticGroups ? "1" : "0", folder + "/q.f32"])
        let reference = try TestSupport.read(folder + "/q.f32").withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let same = zip(ours, reference).filter { abs($0 - $1) <= 1e-5 * max(abs($1), 1) }.count
        XCTAssertGreaterThanOrEqual(Double(same) / Double(ours.count), 0.99, "act \(actOrder) sym \(symmetric) static \(staticGroups): \(same) of \(ours.count)")
        let loss = Double(output.trimmingCharacters(in: .whitespacesAndNewlines))!
        XCTAssertEqual(report.loss, loss, accuracy: loss * 0.01)
    }

    func testMatchesTheReference() throws {
        try check(actOrder: false, symmetric: false)
        try check(actOrder: false, symmetric: true)
        try check(actOrder: true, symmetric: false)
        try check(actOrder: true, symmetric: false, staticGroups: true)
    }
}
