import QuantaCore
import QuantaIO

/// Qwen3: per-head RMSNorm of q and k (`q_norm`, `k_norm`, one weight of `head_dim`) after the
/// projections and before RoPE; `head_dim` from the config (heads x head_dim may differ from
/// hidden_size); q/k/v biases only with `attention_bias`; a sliding window only with
/// `use_sliding_window`. GGUF architecture `qwen3` with HF rotary halves, tensors
/// `blk.N.attn_q_norm.weight` / `attn_k_norm.weight`, and `qwen3.attention.key_length` /
/// `value_length` always written and no `vocab_size` / `rope.dimension_count`, as llama.cpp's converter does.
public struct Qwen3: Architecture {
    public init() {}
    public var modelTypes: [String] { ["qwen3"] }
    public var ggufArchitecture: String { "qwen3" }
    public var hfClass: String { "Qwen3ForCausalLM" }

    public func config(hf json: JSONValue, path: String) throws -> ModelConfig {
        let reader = ConfigReader(json: json, path: path)
        var config = try reader.decoderConfig(modelType: modelTypes[0], attentionBias: reader.bool("attention_bias") ?? false)
        config.qkNorm = true
        if reader.bool("use_sliding_window") == true { config.slidingWindow = try reader.optionalInt("sliding_window") }
        return config
    }

    public func ggufMetadata(_ c: ModelConfig) -> [(key: String, value: GGUFValue)] {
        decoderGGUFMetadata(c, keyLength: true, vocabAndRope: false)
    }
}
