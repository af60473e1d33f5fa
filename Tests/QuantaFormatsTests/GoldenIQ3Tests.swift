import Foundation
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// IQ3_XXS and IQ3_S against llama-quantize's bytes (shared/golden, "Low-bit additions").
extension GoldenTests {
    func testIQ3Types() throws {
        let importance = try GoldenTests.goldenImportance()
        // token_embd and output have no entry: in the imatrix files they were quantized without one.
        XCTAssertNil(importance["token_embd.weight"])
        XCTAssertNil(importance["output.weight"])
        XCTAssertEqual(importance.count, 7)
        try check("IQ3_XXS", golden: "imatrix-IQ3_XXS.gguf", importance: importance)
        try check("IQ3_S", golden: "imatrix-IQ3_S.gguf", importance: importance)
        try check("IQ3_S", golden: "pure-IQ3_S.gguf", importance: [:])
    }

    /// Gaussian rows through the quantizer and IQDequant: the relative RMS error stays near
    /// what 3 bits per weight give (measured 0.219 / 0.193 for IQ3_XXS without / with importance,
    /// 0.168 / 0.146 for IQ3_S), with or without importance; ggml needs no importance here.
    func testIQ3RoundTrip() throws {
        var generator = SeededGenerator(seed: 23)
        let rows = 8, columns = 1024
        let values: [Float] = (0..<(rows * columns)).map { _ in
            let u1 = Float.random(in: Float.ulpOfOne..<1, using: &generator), u2 = Float.random(in: 0..<1, using: &generator)
            return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
        let importance: [Float] = (0..<columns).map { _ in Float.random(in: 0.1..<4, using: &generator) }
        let norm = values.reduce(0) { $0 + $1 * $1 }
        for (name, bound) in [("IQ3_XXS", 0.23), ("IQ3_S", 0.18)] {
            let type = try XCTUnwrap(GGMLType(name: name))
            XCTAssertTrue(Quantization.canQuantize(type))
            XCTAssertFalse(Quantization.requiresImportance(type))
            XCTAssertTrue(Quantization.usesImportance(type))
            for weights in [nil, importance] {
                let bytes = try Quantization.quantize(type, values, rowLength: columns, importance: weights, threads: 2)
                XCTAssertEqual(bytes.count, rows * type.byteCount(elements: columns))
                let back = try bytes.withUnsafeBytes { try Quantization.dequantize(type, $0, count: values.count) }
                let error = zip(values, back).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                let relative = Double((error / norm).squareRoot())
                XCTAssertLessThan(relative, bound, "\(name), importance \(weights != nil)")
                XCTAssertGreaterThan(relative, 0.1, "\(name): below the rate-distortion bound 2^-3.06 of a Gaussian")
            }
        }
    }
}
