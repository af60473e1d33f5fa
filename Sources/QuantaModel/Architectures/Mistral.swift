import QuantaCore
import QuantaIO

/// Mistral: Llama's layout plus a sliding attention window (`sliding_window`). llama.cpp's
/// converter writes it as the llama architecture, without the window, so GGUF files read back
/// as Llama.
public struct Mistral: Architecture {
    public init() {}
    public var modelTypes: [String] { ["mistral"] }
    public var ggufArchitecture: String { "llama" }
    public var readsGGUF: Bool { false }
    public var hfClass: String { "MistralForCausalLM" }

    public func config(hf json: JSONValue, path: String) throws -> ModelConfig {
        let reader = ConfigReader(json: json, path: path)
        var config = try reader.decoderConfig(modelType: modelTypes[0], attentionBias: reader.bool("attention_bias") ?? false)
        config.slidingWindow = try reader.optionalInt("sliding_window")
        return config
    }
}
