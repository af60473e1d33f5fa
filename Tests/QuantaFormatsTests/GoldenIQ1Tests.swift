import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// IQ1_S and IQ1_M against llama-quantize (shared/golden, "Low-bit additions"): the IQ1 golden
/// files mix types, so each tensor is checked against its own type.
extension GoldenTests {
    func testIQ1Types() throws {
        let importance = try GoldenTests.goldenImportance()
        XCTAssertNil(importance["token_embd.weight"])
        XCTAssertNil(importance["output.weight"])
        let blocks = GoldenTests.tensors.filter { $0.hasPrefix("blk.") }
        XCTAssertEqual(blocks.count, 7)
        var iq1s = Dictionary(uniqueKeysWithValues: blocks.map { ($0, GGMLType.iq1_S) })
        iq1s["token_embd.weight"] = .q2_K
        iq1s["output.weight"] = .q5_K
        try check(golden: "imatrix-IQ1_S.gguf", types: iq1s, importance: importance)
        // token_embd and output: IQ1_M with no importance at all
        let iq1m = Dictionary(uniqueKeysWithValues: GoldenTests.tensors.map { ($0, GGMLType.iq1_M) })
        try check(golden: "imatrix-IQ1_M.gguf", types: iq1m, importance: importance)
    }

    /// Random rows (with a zero block and a tiny block, which ggml skips) read back through the IQ1
    /// readers: the relative RMS error stays well below that of reading zeros (1), and the bytes do
    /// not depend on the thread count.
    func testIQ1RoundTrip() throws {
        var generator = SplitMix64(seed: 29)
        let rows = 8, columns = 512
        var values = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &generator) * 0.05 }
        for j in 0..<32 { values[j] = 0 }
        for j in 64..<96 { values[j] *= 1e-9 }
        let importance = (0..<columns).map { _ in Float.random(in: 0.1...2, using: &generator) }
        for (type, weights, bound) in [(GGMLType.iq1_S, importance, Float(0.5)), (.iq1_M, importance, 0.5), (.iq1_M, nil, 0.6)] {
            let bytes = try Quantization.quantize(type, values, rowLength: columns, importance: weights, threads: 1)
            XCTAssertEqual(bytes, try Quantization.quantize(type, values, rowLength: columns, importance: weights, threads: 3), type.name)
            let back = try bytes.withUnsafeBytes { try Quantization.dequantize(type, $0, count: values.count) }
            var error: Float = 0, norm: Float = 0
            for (a, b) in zip(values, back) {
                error += (a - b) * (a - b)
                norm += a * a
            }
            let relative = (error / norm).squareRoot()
            XCTAssertLessThan(relative, bound, "\(type.name) importance \(weights != nil)")
        }
    }

    func testIQ1SRequiresImportance() {
        let values = [Float](repeating: 0.5, count: 256)
        XCTAssertTrue(Quantization.requiresImportance(.iq1_S))
        XCTAssertFalse(Quantization.requiresImportance(.iq1_M))
        XCTAssertThrowsError(try Quantization.quantize(.iq1_S, values, rowLength: 256)) { error in
            XCTAssertEqual("\(error)", "IQ1_S: IQ1_S requires an importance matrix")
        }
        XCTAssertNoThrow(try Quantization.quantize(.iq1_M, values, rowLength: 256))
    }
}
