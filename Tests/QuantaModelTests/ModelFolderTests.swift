import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

final class ModelFolderTests: XCTestCase {
    func testBundledModelFolder() throws {
        let model = try ModelFolder(path: TestSupport.austenModel)
        let c = model.config
        XCTAssertEqual(c.modelType, "llama")
        XCTAssertEqual(c.architectures, ["LlamaForCausalLM"])
        XCTAssertEqual([c.hiddenSize, c.intermediateSize, c.layerCount, c.headCount, c.kvHeadCount, c.headDim, c.vocabSize],
                       [256, 768, 6, 8, 4, 32, 4096])
        XCTAssertEqual(c.rmsNormEps, 1e-5)
        XCTAssertEqual(c.ropeTheta, 10000)
        XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertEqual(c.bosTokenIds, [0])
        XCTAssertEqual(c.eosTokenIds, [0])
        XCTAssertEqual(c.dtype, "float32")
        XCTAssertEqual(model.parameterCount, 6_819_072)
        XCTAssertEqual(c.expectedParameterCount, 6_819_072)
        XCTAssertNotNil(model.tokenizerPath)
        XCTAssertEqual(model.generationConfig?["bos_token_id"]?.intValue, 0)
    }

    private func folder(config: String, files: [String: [UInt8]] = [:]) throws -> String {
        let path = try TestSupport.temporaryFolder()
        try TestSupport.write(Array(config.utf8), to: path + "/config.json")
        for (name, bytes) in files { try TestSupport.write(bytes, to: path + "/" + name) }
        return path
    }

    static let qwen2 = """
        {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": true,
         "rope_parameters": {"rope_theta": 1000000.0}, "eos_token_id": [1, 2], "torch_dtype": "bfloat16"}
        """

    func testQwen2ConfigWithTiedEmbeddings() throws {
        let empty = try SafetensorsWriter.Entry(name: "x", dtype: .f32, shape: [1], data: [0, 0, 0, 0])
        let path = try folder(config: ModelFolderTests.qwen2)
        try SafetensorsWriter.write([empty], to: path + "/model.safetensors")
        let c = try ModelFolder(path: path).config
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertTrue(c.attentionBias)
        XCTAssertEqual(c.headDim, 16)
        XCTAssertEqual(c.ropeTheta, 1_000_000)
        XCTAssertEqual(c.eosTokenIds, [1, 2])
        XCTAssertEqual(c.dtype, "bfloat16")
        // 100*64 embeddings once, 2 layers of (q 64*64 + k,v 2*64*32 + o 64*64 + biases 64+32+32 + mlp 3*64*128 + norms 128), final norm.
        XCTAssertEqual(c.expectedParameterCount, 6400 + 2 * (4096 + 4096 + 4096 + 128 + 24576 + 128) + 64)
    }

    func testPickleOnlyFolderIsRefused() throws {
        let path = try folder(config: ModelFolderTests.qwen2, files: ["pytorch_model.bin": [0x80, 0x02, 0x7D, 0x71]])
        XCTAssertThrowsError(try ModelFolder(path: path)) { error in
            XCTAssertEqual((error as? QuantaError)?.kind, .refused)
            XCTAssertEqual("\(error)", "\(path): holds only pickle checkpoints (pytorch_model.bin). Quanta never unpickles: "
                + "loading a pickle runs arbitrary code. Convert the folder to safetensors first, e.g. in Python with transformers: "
                + "AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)")
        }
    }

    func testConfigErrorsNameTheKey() throws {
        let unsupported = try folder(config: #"{"model_type": "gpt2"}"#)
        XCTAssertThrowsError(try ModelFolder(path: unsupported)) { error in
            XCTAssertEqual("\(error)", "\(unsupported)/config.json: model_type: 'gpt2' is not supported (supported: llama, mistral, qwen2, qwen3, gemma3_text, gemma3, phi3)")
        }
        let missing = try folder(config: #"{"model_type": "llama", "hidden_size": 64}"#)
        XCTAssertThrowsError(try ModelFolder(path: missing)) { error in
            XCTAssertEqual("\(error)", "\(missing)/config.json: intermediate_size: required key is missing")
        }
        let heads = try folder(config: ModelFolderTests.qwen2.replacingOccurrences(of: "\"num_key_value_heads\": 2", with: "\"num_key_value_heads\": 3"))
        XCTAssertThrowsError(try ModelFolder(path: heads)) { error in
            XCTAssertEqual("\(error)", "\(heads)/config.json: num_key_value_heads: 3 does not divide num_attention_heads 4")
        }
        // Found by Fuzz/Sources/fuzz-config: 10^16 layers asked for an array of 1.36e18 bytes.
        for (key, value, limit) in [("num_hidden_layers", "10000000000000000", 512), ("hidden_size", "33554432", 1 << 24),
                                    ("vocab_size", "4611686018427387904", 1 << 24)] {
            let huge = try folder(config: ModelFolderTests.qwen2.replacingOccurrences(of: #""\#(key)": "#, with: #""\#(key)": \#(value), "x_\#(key)": "#))
            XCTAssertThrowsError(try ModelFolder(path: huge), key) { error in
                XCTAssertEqual("\(error)", "\(huge)/config.json: \(key): \(value) exceeds the limit of \(limit)")
            }
        }
        let broken = try folder(config: #"{"model_type": "llama",}"#)
        XCTAssertThrowsError(try ModelFolder(path: broken)) { error in
            XCTAssertEqual("\(error)", "\(broken)/config.json: not valid JSON: expected a string key at byte 23")
        }
        let noWeights = try folder(config: ModelFolderTests.qwen2)
        XCTAssertThrowsError(try ModelFolder(path: noWeights)) { error in
            XCTAssertEqual((error as? QuantaError)?.kind, .notFound)
            XCTAssertEqual("\(error)", "\(noWeights): model folder has no model.safetensors or model.safetensors.index.json")
        }
        let empty = try TestSupport.temporaryFolder()
        XCTAssertThrowsError(try ModelFolder(path: empty)) { error in
            XCTAssertEqual("\(error)", "\(empty)/config.json: model folder has no config.json")
        }
    }
}
