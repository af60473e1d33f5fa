import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// Our quantized bytes against llama-quantize's on the bundled model (shared/golden).
final class GoldenTests: XCTestCase {
    static let tensors = ["token_embd.weight", "output.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
                          "blk.0.attn_output.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"]

    /// The F32 GGUF form of a tensor of the bundled model (q/k rows permuted as llama.cpp does).
    static func ggufWeights(_ name: String, model: HuggingFaceSource) throws -> (values: [Float], rows: Int, columns: Int) {
        let tensor = try XCTUnwrap(model.tensors.first { $0.name == name })
        return (try model.values(name), tensor.dimensions[1], tensor.dimensions[0])
    }

    /// The golden imatrix's importance for each of `tensors` it has (not token_embd nor output:
    /// llama-imatrix collects none for them).
    static func goldenImportance() throws -> [String: [Float]] {
        let matrix = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        var importance: [String: [Float]] = [:]
        for name in tensors { importance[name] = matrix.importance(for: name) }
        return importance
    }

    /// Quantizes each of `tensors` to the type `golden` stores it in (asserted against `types`),
    /// with its importance when `importance` has it, and compares the bytes with llama-quantize's.
    func check(golden: String, types: [String: GGMLType], importance: [String: [Float]]) throws {
        let model = try HuggingFaceSource(path: TestSupport.austenModel)
        let file = try GGUFFile(path: TestSupport.golden(golden))
        for name in GoldenTests.tensors {
            let (values, _, columns) = try GoldenTests.ggufWeights(name, model: model)
            let info = try file.info(name)
            XCTAssertEqual(info.type, types[name], "\(golden) \(name)")
            let ours = try Quantization.quantize(info.type, values, rowLength: columns, importance: importance[name], threads: 2)
            let theirs = try file.rawBytes(info)
            if !theirs.elementsEqual(ours) {
                let first = zip(ours, theirs).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1
                XCTFail("\(golden) \(name) (\(info.type.name)): bytes differ, first at byte \(first) of \(ours.count) (block \(first / info.type.bytesPerBlock))")
            }
        }
    }

    /// `check` with one type for every tensor.
    func check(_ typeName: String, golden: String, importance: [String: [Float]]) throws {
        let type = try XCTUnwrap(GGMLType(name: typeName))
        try check(golden: golden, types: Dictionary(uniqueKeysWithValues: GoldenTests.tensors.map { ($0, type) }), importance: importance)
    }

    func testPureTypes() throws {
        for type in ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0"] {
            try check(type, golden: "pure-\(type).gguf", importance: [:])
        }
    }
}

extension GoldenTests {
    func testImportanceTypes() throws {
        let importance = try GoldenTests.goldenImportance()
        XCTAssertNil(importance["output.weight"], "llama-imatrix collects no statistics for the output")
        XCTAssertEqual(importance["blk.0.ffn_down.weight"]?.count, 768)
        for type in ["Q4_0", "Q4_1", "Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"] {
            try check(type, golden: "imatrix-\(type).gguf", importance: importance)
        }
    }
}
