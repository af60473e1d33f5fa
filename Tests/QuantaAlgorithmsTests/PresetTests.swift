import QuantaAlgorithms
import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// llama-quantize's per-tensor choices (Tests/Fixtures/golden/presets.tsv) reproduced by the planner.
final class PresetTests: XCTestCase {
    static func expected() throws -> [String: [String: [String: String]]] {
        let text = try String(contentsOfFile: TestSupport.path("Tests/Fixtures/golden/presets.tsv"), encoding: .utf8)
        var table: [String: [String: [String: String]]] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: "\t").map(String.init)
            table[f[0], default: [:]][f[1], default: [:]][f[2]] = f[3]
        }
        return table
    }

    func check(model: String, tensors: [(name: String, dimensions: [Int], type: GGMLType)], heads: Int, kvHeads: Int, layers: Int) throws {
        let table = try PresetTests.expected()[model]!
        XCTAssertEqual(table.count, 28)
        for (presetName, expected) in table.sorted(by: { $0.key < $1.key }) {
            let preset = try XCTUnwrap(GGUFPreset(name: presetName))
            // The IQ1-IQ3 and TQ rows were made with --imatrix (the golden README), the others without.
            var options = QuantizationOptions()
            options.hasImportance = ["IQ1", "IQ2", "IQ3", "TQ"].contains { presetName.hasPrefix($0) }
            let planner = try QuantizationPlanner(preset: preset, options: options, headCount: heads, kvHeadCount: kvHeads, layerCount: layers)
            let plan = try planner.plan(tensors)
            XCTAssertEqual(plan.count, expected.count, "\(model) \(presetName)")
            var mismatches: [String] = []
            for tensor in plan where expected[tensor.name] != tensor.type.name {
                mismatches.append("\(tensor.name): ours \(tensor.type.name), llama-quantize \(expected[tensor.name] ?? "absent")")
            }
            XCTAssertEqual(Array(mismatches.prefix(5)), [], "\(model) \(presetName): \(mismatches.count) tensors differ")
        }
    }

    func testAustenLlama() throws {
        let model = try ModelFolder(path: TestSupport.austenModel)
        let names = Dictionary(uniqueKeysWithValues: model.config.architecture.tensors(model.config).map { ($0.hfName, $0.ggufName) })
        let tensors = model.weights.tensors.map { entry in
            (name: names[entry.info.name]!, dimensions: Array(entry.info.shape.reversed()), type: GGMLType.f32)
        }
        try check(model: "austen", tensors: tensors, heads: 8, kvHeads: 4, layers: 6)
    }

    func testSmolLM2() throws {
        let file = try GGUFFile(path: TestSupport.smolLM2())
        let tensors = file.tensors.map { (name: $0.name, dimensions: $0.dimensions, type: GGMLType.f32) }
        try check(model: "smollm2", tensors: tensors, heads: 9, kvHeads: 3, layers: 30)
    }

    func testOptions() throws {
        let tensors: [(name: String, dimensions: [Int], type: GGMLType)] = [
            ("token_embd.weight", [256, 100], .f32), ("output.weight", [256, 100], .f32), ("output_norm.weight", [256], .f32),
            ("blk.0.attn_q.weight", [256, 256], .f32), ("blk.0.attn_v.weight", [256, 64], .f32), ("blk.0.ffn_down.weight", [512, 256], .f32),
        ]
        var options = QuantizationOptions()
        options.tensorTypes = [("attn_.*", .q8_0), ("attn_q", .q2_K)]
        options.tokenEmbeddingType = .q5_0
        options.leaveOutputTensor = true
        let plan = try QuantizationPlanner(preset: .q4_K_M, options: options, headCount: 4, kvHeadCount: 1, layerCount: 1).plan(tensors)
        XCTAssertEqual(plan.map(\.name), ["output.weight", "output_norm.weight", "token_embd.weight", "blk.0.attn_q.weight",
                                          "blk.0.attn_v.weight", "blk.0.ffn_down.weight"])
        XCTAssertEqual(plan.map(\.type), [.f32, .f32, .q5_0, .q8_0, .q8_0, .q6_K], "first matching --tensor-type wins")
        options = QuantizationOptions()
        options.pure = true
        let pure = try QuantizationPlanner(preset: .q4_K_M, options: options, headCount: 4, kvHeadCount: 1, layerCount: 1).plan(tensors)
        XCTAssertEqual(pure.map(\.type), [.q4_K, .f32, .q4_K, .q4_K, .q4_K, .q4_K])
        options.tensorTypes = [("(", .q8_0)]
        XCTAssertThrowsError(try QuantizationPlanner(preset: .q4_0, options: options, headCount: 1, kvHeadCount: 1, layerCount: 1))
        let wide = [(name: "blk.0.attn_q.weight", dimensions: [576, 576], type: GGMLType.f32)]
        options = QuantizationOptions()
        options.pure = true
        XCTAssertThrowsError(try QuantizationPlanner(preset: .q4_K_M, options: options, headCount: 9, kvHeadCount: 3, layerCount: 1).plan(wide)) { error in
            XCTAssertEqual("\(error)", "tensor 'blk.0.attn_q.weight': rows of 576 values cannot be stored as Q4_K (blocks of 256)")
        }
        let fallback = try QuantizationPlanner(preset: .q4_K_M, options: QuantizationOptions(), headCount: 9, kvHeadCount: 3, layerCount: 1).plan(wide)
        XCTAssertEqual(fallback.first?.type, .q5_0)
        XCTAssertEqual(fallback.first?.fallbackFrom, .q4_K)
    }
}
