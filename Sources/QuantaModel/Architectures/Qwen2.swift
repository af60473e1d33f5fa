import QuantaCore
import QuantaIO

/// Qwen2: Llama's block with q/k/v biases always on, and a sliding window only when
/// `use_sliding_window` is true. GGUF keeps the Hugging Face rotary halves (no q/k permutation).
public struct Qwen2: Architecture {
    public init() {}
    public var modelTypes: [String] { ["qwen2"] }
    public var ggufArchitecture: String { "qwen2" }
    public var hfClass: String { "Qwen2ForCausalLM" }

    public func config(hf json: JSONValue, path: String) throws -> ModelConfig {
        let reader = ConfigReader(json: json, path: path)
        var config = try reader.decoderConfig(modelType: modelTypes[0], attentionBias: true)
        if reader.bool("use_sliding_window") == true { config.slidingWindow = try reader.optionalInt("sliding_window") }
        return config
    }

    /// llama.cpp's converter writes no `vocab_size` / `rope.dimension_count` for qwen2.
    public func ggufMetadata(_ c: ModelConfig) -> [(key: String, value: GGUFValue)] {
        decoderGGUFMetadata(c, keyLength: c.headDimInConfig || c.headDim * c.headCount != c.hiddenSize, vocabAndRope: false)
    }
}
