import QuantaCore
import QuantaIO

/// Shapes and constants of a Llama-family decoder (llama, mistral, qwen2, smollm).
public struct TransformerConfig: Sendable, Equatable {
    public var architecture: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var tieWordEmbeddings: Bool
    /// q/k/v projections carry biases (qwen2).
    public var attentionBias: Bool
    /// Attention span in positions (nil: full causal attention).
    public var slidingWindow: Int?

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    /// From a Hugging Face config.
    public init(_ c: ModelConfig) {
        architecture = c.modelType
        hiddenSize = c.hiddenSize
        intermediateSize = c.intermediateSize
        layerCount = c.layerCount
        headCount = c.headCount
        kvHeadCount = c.kvHeadCount
        headDim = c.headDim
        vocabSize = c.vocabSize
        rmsNormEps = Float(c.rmsNormEps)
        ropeTheta = Float(c.ropeTheta)
        tieWordEmbeddings = c.tieWordEmbeddings
        attentionBias = c.attentionBias
        slidingWindow = c.slidingWindow
    }

    /// From GGUF metadata (`<arch>.*` keys); qwen2 implies q/k/v biases.
    public init(gguf file: GGUFFile) throws {
        guard let arch = file["general.architecture"]?.stringValue else {
            throw QuantaError.malformed(file.path, "missing general.architecture")
        }
        guard ModelRegistry.isSupported(arch) else {
            throw QuantaError.unsupported(file.path, "architecture '\(arch)' is not supported (\(ModelRegistry.architectures.joined(separator: ", ")))")
        }
        func int(_ key: String) throws -> Int {
            guard let v = file["\(arch).\(key)"]?.intValue, v > 0 else {
                throw QuantaError.malformed(file.path, "missing or invalid '\(arch).\(key)'")
            }
            return v
        }
        architecture = arch
        hiddenSize = try int("embedding_length")
        intermediateSize = try int("feed_forward_length")
        layerCount = try int("block_count")
        headCount = try int("attention.head_count")
        kvHeadCount = file["\(arch).attention.head_count_kv"]?.intValue ?? headCount
        headDim = file["\(arch).attention.key_length"]?.intValue ?? file["\(arch).rope.dimension_count"]?.intValue ?? hiddenSize / headCount
        vocabSize = file["\(arch).vocab_size"]?.intValue ?? file["tokenizer.ggml.tokens"]?.arrayValue?.count ?? 0
        rmsNormEps = Float(file["\(arch).attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-5)
        ropeTheta = Float(file["\(arch).rope.freq_base"]?.doubleValue ?? 10000)
        tieWordEmbeddings = !file.tensors.contains { $0.name == "output.weight" }
        attentionBias = file.tensors.contains { $0.name == "blk.0.attn_q.bias" }
        slidingWindow = file["\(arch).attention.sliding_window"]?.intValue
        guard headCount % kvHeadCount == 0, vocabSize > 0 else {
            throw QuantaError.malformed(file.path, "inconsistent head counts or vocabulary size")
        }
    }
}

/// The architectures the runtime runs, keyed by HF `model_type` / GGUF `general.architecture`.
public enum ModelRegistry {
    public static let architectures = ["llama", "mistral", "qwen2", "smollm"]
    public static func isSupported(_ name: String) -> Bool { architectures.contains(name) }
}
