import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// IQ2_XXS, IQ2_XS and IQ2_S against llama-quantize (shared/golden, "Low-bit additions").
extension GoldenTests {
    func testIQ2Types() throws {
        let importance = try GoldenTests.goldenImportance()
        XCTAssertNil(importance["token_embd.weight"])
        XCTAssertNil(importance["output.weight"])
        func types(_ block: GGMLType, embedding: GGMLType, output: GGMLType) -> [String: GGMLType] {
            var types = Dictionary(uniqueKeysWithValues: GoldenTests.tensors.map { ($0, block) })
            types["token_embd.weight"] = embedding
            types["output.weight"] = output
            return types
        }
        try check(golden: "imatrix-IQ2_XXS.gguf", types: types(.iq2_XXS, embedding: .q2_K, output: .q5_K), importance: importance)
        try check(golden: "imatrix-IQ2_XS.gguf", types: types(.iq2_XS, embedding: .q2_K, output: .q5_K), importance: importance)
        // token_embd and output: IQ2_S with no importance at all.
        try check(golden: "imatrix-IQ2_S.gguf", types: types(.iq2_S, embedding: .iq2_S, output: .iq2_S), importance: importance)
    }

    /// A random row (Gaussian with a few outliers and zeros) read back through IQDequant stays
    /// within a relative RMS error that a wrong grid, sign or scale layout would exceed.
    func testIQ2RoundTrip() throws {
        var generator = SplitMix64(seed: 29)
        func uniform() -> Float { Float(generator.next() >> 40) / Float(1 << 24) }
        let n = 4 * 256
        var row = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let u1 = max(uniform(), 1e-7), u2 = uniform()
            row[i] = (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
            if i % 97 == 0 { row[i] *= 6 }
            if i % 61 == 0 { row[i] = 0 }
        }
        let importance = (0..<n).map { _ in 0.1 + uniform() }
        let rms = (row.reduce(0) { $0 + $1 * $1 } / Float(n)).squareRoot()
        // Measured on this row: IQ2_XXS 0.377, IQ2_XS 0.323, IQ2_S 0.285 (0.299 without importance).
        for (type, bound) in [(GGMLType.iq2_XXS, Float(0.45)), (.iq2_XS, 0.4), (.iq2_S, 0.36)] {
            for weights in [importance, nil] where weights != nil || type == .iq2_S {
                let bytes = try Quantization.quantize(type, row, rowLength: n, importance: weights)
                XCTAssertEqual(bytes.count, type.rowBytes(n))
                let back = try bytes.withUnsafeBytes { try Quantization.dequantize(type, $0, count: n) }
                var error: Float = 0
                for i in 0..<n { error += (back[i] - row[i]) * (back[i] - row[i]) }
                let relative = (error / Float(n)).squareRoot() / rms
                XCTAssertLessThan(relative, bound, "\(type.name) importance \(weights != nil)")
                XCTAssertGreaterThan(relative, 0.05, "\(type.name): 2 bits cannot be this close")
            }
        }
    }

    func testIQ2RequiresImportance() throws {
        let row = [Float](repeating: 0.5, count: 256)
        for type in [GGMLType.iq2_XXS, .iq2_XS] {
            XCTAssertTrue(Quantization.requiresImportance(type))
            XCTAssertThrowsError(try Quantization.quantize(type, row, rowLength: 256)) { error in
                XCTAssertEqual("\(error)", "\(type.name): \(type.name) requires an importance matrix")
            }
        }
        XCTAssertFalse(Quantization.requiresImportance(.iq2_S))
        XCTAssertNoThrow(try Quantization.quantize(.iq2_S, row, rowLength: 256))
    }
}
