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

    func check(_ typeName: String, golden: String, importance: [String: [Float]]?) throws {
        let model = try HuggingFaceSource(path: TestSupport.austenModel)
        let file = try GGUFFile(path: TestSupport.golden(golden))
        let type = GGMLType(name: typeName)!
        for name in GoldenTests.tensors {
            let (values, _, columns) = try GoldenTests.ggufWeights(name, model: model)
            let info = try file.info(name)
            XCTAssertEqual(info.type, type, name)
            let ours = try Quantization.quantize(type, values, rowLength: columns, importance: importance?[name], threads: 2)
            let theirs = try file.rawBytes(info)
            if !theirs.elementsEqual(ours) {
                let firstDifference = zip(ours, theirs).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1
                XCTFail("\(golden) \(name): bytes differ, first at byte \(firstDifference) of \(ours.count) (block \(firstDifference / type.bytesPerBlock))")
            }
        }
    }

    func testPureTypes() throws {
        for type in ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0"] {
            try check(type, golden: "pure-\(type).gguf", importance: nil)
        }
    }
}

extension GoldenTests {
    func testImportanceTypes() throws {
        let matrix = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        var importance: [String: [Float]] = [:]
        for name in GoldenTests.tensors { importance[name] = matrix.importance(for: name) }
        XCTAssertNil(importance["output.weight"], "llama-imatrix collects no statistics for the output")
        XCTAssertEqual(importance["blk.0.ffn_down.weight"]?.count, 768)
        for type in ["Q4_0", "Q4_1", "Q5_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"] {
            try check(type, golden: "imatrix-\(type).gguf", importance: importance)
        }
    }
}
