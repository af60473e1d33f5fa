import QuantaCore
import QuantaIO

/// Llama (and models published in its layout, such as SmolLM2): RMSNorm, rotary q/k, grouped-query
/// attention, SwiGLU MLP, optional q/k/v biases (`attention_bias`). llama.cpp's converter
/// interleaves the rotary halves of q and k rows in GGUF.
public struct Llama: Architecture {
    public init() {}
    public var modelTypes: [String] { ["llama"] }
    public var ggufArchitecture: String { "llama" }
    public var hfClass: String { "LlamaForCausalLM" }
}
