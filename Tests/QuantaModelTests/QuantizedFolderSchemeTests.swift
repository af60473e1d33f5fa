import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// Per-module grids in quantized folders' configs (GPTQModel `dynamic`, MLX per-module entries,
/// compressed-tensors config groups): resolution, errors that name config.json, and fuzzing.
final class QuantizedFolderSchemeTests: XCTestCase {
    static let base = """
        {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": true,
         "rope_parameters": {"rope_theta": 1000000.0}, "eos_token_id": [1, 2], "torch_dtype": "bfloat16",
        """
    static let gptq = #""quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128, "dynamic": {"-:^model\\.layers\\.1\\.mlp\\.down_proj$": {}, "+:^model\\.layers\\.0\\.self_attn\\.(q_proj|k_proj|v_proj|qkv_proj)$": {"bits": 8}}}}"#
    static let mlx = #""quantization": {"group_size": 64, "bits": 4, "model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 6}, "model.layers.1.mlp.up_proj": false}}"#
    static let ct = #""quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head", "model.layers.1.self_attn.o_proj"], "config_groups": {"group_0": {"targets": ["model.layers.0.mlp.down_proj"], "weights": {"num_bits": 8, "type": "int", "strategy": "channel"}}, "group_1": {"targets": ["re:.*self_attn.*"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 32}}, "group_2": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}}}}}"#

    func model(_ quantization: String) throws -> ModelFolder {
        let path = try TestSupport.temporaryFolder("scheme")
        try TestSupport.write(Array((Self.base + quantization).utf8), to: path + "/config.json")
        let entry = try SafetensorsWriter.Entry(name: "x", dtype: .f32, shape: [1], data: [0, 0, 0, 0])
        try SafetensorsWriter.write([entry], to: path + "/model.safetensors")
        return try ModelFolder(path: path)
    }

    func testPerModuleKinds() throws {
        let gptq = try XCTUnwrap(try QuantizedFolderScheme(model(Self.gptq)))
        XCTAssertEqual(gptq.kind(of: "model.layers.0.self_attn.k_proj"), .gptq(bits: 8))
        XCTAssertEqual(gptq.kind(of: "model.layers.0.self_attn.qkv_proj"), .gptq(bits: 8))
        XCTAssertEqual(gptq.kind(of: "model.layers.0.self_attn.o_proj"), .gptq(bits: 4))
        XCTAssertNil(gptq.kind(of: "model.layers.1.mlp.down_proj"))
        let mlx = try XCTUnwrap(try QuantizedFolderScheme(model(Self.mlx)))
        XCTAssertEqual(mlx.kind(of: "model.layers.0.mlp.down_proj"), .mlx(bits: 6, groupSize: 32))
        XCTAssertEqual(mlx.kind(of: "model.layers.0.mlp.up_proj"), .mlx(bits: 4, groupSize: 64))
        XCTAssertNil(mlx.kind(of: "model.layers.1.mlp.up_proj"))
        let ct = try XCTUnwrap(try QuantizedFolderScheme(model(Self.ct)))
        XCTAssertEqual(ct.kind(of: "model.layers.0.mlp.down_proj"), .compressedTensors(bits: 8, groupSize: nil))
        XCTAssertEqual(ct.kind(of: "model.layers.0.self_attn.q_proj"), .compressedTensors(bits: 4, groupSize: 32))
        XCTAssertEqual(ct.kind(of: "model.layers.1.mlp.gate_proj"), .compressedTensors(bits: 4, groupSize: 128))
        XCTAssertNil(ct.kind(of: "model.layers.1.self_attn.o_proj"))
    }

    func testErrorsNameTheConfig() throws {
        func error(_ quantization: String) -> String {
            do {
                let folder = try model(quantization)
                _ = try QuantizedFolderScheme(folder)
                return "no error"
            } catch {
                return "\(error)".components(separatedBy: "/config.json: ").last!
            }
        }
        XCTAssertEqual(error(Self.gptq.replacingOccurrences(of: #""bits": 8"#, with: #""bits": 5"#)),
                       #"dynamic '+:^model\.layers\.0\.self_attn\.(q_proj|k_proj|v_proj|qkv_proj)$': bits 5 is not read (2, 3, 4 or 8)"#)
        XCTAssertEqual(error(Self.gptq.replacingOccurrences(of: "-:^model", with: "-:(model")),
                       #"dynamic key '-:(model\.layers\.1\.mlp\.down_proj$' is not a regular expression Quanta reads"#)
        XCTAssertEqual(error(Self.mlx.replacingOccurrences(of: #""bits": 6"#, with: #""bits": 7"#)),
                       #"quantization.model.layers.0.mlp.down_proj {"group_size":32,"bits":7} is not an MLX affine layout Quanta reads"#)
        XCTAssertTrue(error(Self.ct.replacingOccurrences(of: #""targets": ["model.layers.0.mlp.down_proj"], "#, with: "")).hasPrefix("config group group_0 "))
    }

    /// Mutated quantization configs parse or fail with a QuantaError; per-module lookups never crash.
    func testMutatedConfigsFailCleanly() throws {
        let alphabet = Array(#"{}[]":,-+^$\.()|*?09abqzre:Linear "#.utf8)
        var rng = SeededGenerator(seed: 11)
        var read = 0, refused = 0
        for round in 0..<600 {
            let bytes = TestSupport.mutated(Array([Self.gptq, Self.mlx, Self.ct][round % 3].utf8), alphabet: alphabet, edits: 3, rng: &rng)
            do {
                let scheme = try QuantizedFolderScheme(model(String(decoding: bytes, as: UTF8.self)))
                for path in ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", ""] { _ = scheme?.kind(of: path) }
                read += 1
            } catch is QuantaError {
                refused += 1
            }
        }
        XCTAssertGreaterThan(read, 50)
        XCTAssertGreaterThan(refused, 50)
    }
}
