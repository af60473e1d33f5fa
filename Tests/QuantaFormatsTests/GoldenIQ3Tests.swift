import Foundation
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// IQ3_XXS and IQ3_S against llama-quantize's bytes (shared/golden, "Low-bit additions").
extension GoldenTests {
    /// Every golden tensor quantized with its type in the file (asserted to be `expected`) and
    /// its importance from `importance` (none where the map has no entry), compared byte for byte.
    func checkPerTensor(_ golden: String, expected: [String: String], importance: [String: [Float]]) throws {
        let model = try HuggingFaceSource(path: TestSupport.austenModel)
        let file = try GGUFFile(path: TestSupport.golden(golden))
        for name in GoldenTests.tensors {
            let info = try file.info(name)
            XCTAssertEqual(info.type.name, expected[name], "\(golden) \(name)")
            let (values, _, columns) = try GoldenTests.ggufWeights(name, model: model)
            let ours = try Quantization.quantize(info.type, values, rowLength: columns, importance: importance[name], threads: 2)
            let theirs = file.rawBytes(info)
            if !theirs.elementsEqual(ours) {
                let first = zip(ours, theirs).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1
                XCTFail("\(golden) \(name) (\(info.type.name)): bytes differ, first at byte \(first) of \(ours.count) (block \(first / info.type.bytesPerBlock))")
            }
        }
    }

    func testIQ3Types() throws {
        let matrix = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        var importance: [String: [Float]] = [:]
        for name in GoldenTests.tensors { importance[name] = matrix.importance(for: name) }
        // token_embd and output have no entry: in the imatrix files they were quantized without one.
        XCTAssertNil(importance["token_embd.weight"])
        XCTAssertNil(importance["output.weight"])
        XCTAssertEqual(importance.count, 7)
        let all = { (type: String) in Dictionary(uniqueKeysWithValues: GoldenTests.tensors.map { ($0, type) }) }
        try checkPerTensor("imatrix-IQ3_XXS.gguf", expected: all("IQ3_XXS"), importance: importance)
        try checkPerTensor("imatrix-IQ3_S.gguf", expected: all("IQ3_S"), importance: importance)
        try checkPerTensor("pure-IQ3_S.gguf", expected: all("IQ3_S"), importance: [:])
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
