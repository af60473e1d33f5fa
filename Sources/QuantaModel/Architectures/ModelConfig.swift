import QuantaCore
import QuantaIO

/// Shapes and constants of a decoder-only transformer, as an architecture family decodes them
/// from a Hugging Face `config.json` or from GGUF metadata. Absent optional keys take the
/// `transformers` defaults.
public struct ModelConfig: Sendable, Equatable {
    /// Largest width, count or length a config may give (2^24: products of two stay far from
    /// overflow, and every released model is well below it).
    public static let maximumDimension = 1 << 24
    /// Largest number of blocks (llama.cpp's LLAMA_MAX_LAYERS).
    public static let maximumLayers = 512

    /// Checks a positive size read from a file against `limit` (`maximumDimension`, or
    /// `maximumLayers` for a block count); `subject` names the file and key in the error.
    static func checkBounds(_ value: Int, limit: Int = maximumDimension, subject: String) throws {
        guard value <= limit else { throw QuantaError.malformed(subject, "\(value) exceeds the limit of \(limit)") }
    }

    /// The registry key of the family (a Hugging Face `model_type`: "llama", "qwen3", ...).
    public var modelType: String
    /// `architectures` of config.json (empty for GGUF sources).
    public var architectures: [String] = []
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    /// Width of one attention head (`head_dim`, else hidden_size / heads).
    public var headDim: Int
    /// config.json names `head_dim` (GGUF: `attention.key_length` is present); llama.cpp's
    /// converter then writes `attention.key_length` / `value_length`.
    public var headDimInConfig = false
    public var vocabSize: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    /// q/k/v projections carry biases (always for qwen2, `attention_bias` otherwise).
    public var attentionBias: Bool
    /// Per-head RMSNorm of q and k before RoPE (qwen3).
    public var qkNorm: Bool = false
    /// Each position attends to at most this many positions (itself included): mistral's
    /// `sliding_window`, qwen's when `use_sliding_window` is true; nil for full causal attention.
    public var slidingWindow: Int?
    /// Which decoder layers use `slidingWindow` (gemma3's `layer_types`, true for
    /// "sliding_attention"); nil: every layer does.
    public var slidingLayers: [Bool]?
    /// RoPE base of the sliding-window layers (gemma3's `rope_local_base_freq`); nil: `ropeTheta`.
    public var ropeLocalTheta: Double?
    /// Linear RoPE scaling of the full-attention layers (positions divided by it); nil: none.
    public var ropeLinearFactor: Double?
    /// Added to the Hugging Face values of every RMSNorm weight to get the multiplier the norm
    /// applies (Gemma's `x * (1 + w)`: 1); llama.cpp's converter stores the sums in GGUF.
    public var normWeightOffset: Float = 0
    /// Embeddings are multiplied by sqrt(hiddenSize) (Gemma).
    public var scalesEmbeddings = false
    /// The gated feed-forward activation.
    public var activation: Activation = .silu
    /// RMSNorms after attention and after the feed-forward network, before each residual add (Gemma 3).
    public var postNorms = false
    /// Attention scores are scaled by 1/sqrt of this (gemma3's `query_pre_attn_scalar`); nil: `headDim`.
    public var queryPreAttentionScalar: Double?
    /// Dimensions of each head that RoPE rotates, the first ones (Phi's `partial_rotary_factor`
    /// x head_dim; GGUF `rope.dimension_count`); nil: all of `headDim`.
    public var ropeDimensions: Int?
    /// The context length the model was trained at before any extension
    /// (`original_max_position_embeddings`; GGUF `rope.scaling.original_context_length`).
    public var originalContext: Int?
    /// LongRoPE (Phi-3 `longrope` / `su`); nil: plain RoPE.
    public var longRope: LongRope?
    public var bosTokenIds: [Int] = []
    public var eosTokenIds: [Int] = []
    /// Prepended to every Hugging Face tensor name: "language_model." for a multimodal folder
    /// whose text model this is (gemma3's `Gemma3ForConditionalGeneration`); tensors outside it
    /// (vision tower, projector) are not read.
    public var hfTensorPrefix = ""
    /// `dtype` (transformers 5) or `torch_dtype` (4.x), e.g. "float32".
    public var dtype: String?

    /// Whether decoder layer `layer` attends through the sliding window.
    public func slides(layer: Int) -> Bool {
        slidingWindow != nil && (slidingLayers.map { layer < $0.count && $0[layer] } ?? true)
    }

    /// Throws for an architecture with fused projections (Phi-3's `qkv_proj`, `gate_up_proj`),
    /// which `method` (GPTQ, AWQ, the sensitivity analysis) does not run yet.
    public func checkUnfused(_ method: String) throws {
        if architecture.tensors(self).contains(where: { $0.role.isFused }) {
            throw QuantaError.unsupported(method, "\(modelType)'s fused projections (qkv_proj, gate_up_proj) are quantized by round-to-nearest only; \(method) does not split them yet")
        }
    }

    /// The rotated dimensions of each head (even, at most `headDim`).
    public var rotaryDimensions: Int { ropeDimensions ?? headDim }

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    /// The family that owns this configuration.
    public var architecture: any Architecture { ArchitectureRegistry.family(modelType: modelType)! }

    /// Parameters the architecture implies (embeddings, decoder layers, final norm, head).
    public var expectedParameterCount: Int {
        let projections = 2 * hiddenSize * qDim + 2 * hiddenSize * kvDim
        let bias = attentionBias ? qDim + 2 * kvDim : 0
        let norms = (postNorms ? 4 : 2) * hiddenSize + (qkNorm ? 2 * headDim : 0)
        let layer = projections + bias + 3 * hiddenSize * intermediateSize + norms
        let embeddings = vocabSize * hiddenSize
        return embeddings * (tieWordEmbeddings ? 1 : 2) + layerCount * layer + hiddenSize
    }
}

/// LongRoPE's per-frequency divisors (`rotaryDimensions / 2` each): the short ones while a
/// sequence fits `originalContext`, the long ones beyond; cosines and sines are multiplied by
/// `attentionFactor` either way (transformers' `_compute_longrope_parameters`, llama.cpp's
/// `rope_factors_short` / `rope_factors_long` and `rope.scaling.attn_factor`).
public struct LongRope: Sendable, Equatable {
    public var short: [Float]
    public var long: [Float]
    public var attentionFactor: Double

    public init(short: [Float], long: [Float], attentionFactor: Double) {
        self.short = short
        self.long = long
        self.attentionFactor = attentionFactor
    }
}

/// The gated feed-forward activation: `act(gate) * up`.
public enum Activation: String, Sendable {
    /// x * sigmoid(x) (SwiGLU; `hidden_act` "silu").
    case silu
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GeGLU; "gelu_pytorch_tanh").
    case geluTanh
}

/// Reads the llama-family keys of a Hugging Face `config.json`; `path` names the file in errors.
struct ConfigReader {
    let json: JSONValue
    let path: String

    func fail(_ key: String, _ reason: String) -> QuantaError { QuantaError.malformed("\(path): \(key)", reason) }

    func int(_ key: String, limit: Int = ModelConfig.maximumDimension) throws -> Int {
        guard let value = json[key] else { throw fail(key, "required key is missing") }
        guard let i = value.intValue, i > 0 else { throw fail(key, "must be a positive integer, got \(value.serialized())") }
        try ModelConfig.checkBounds(i, limit: limit, subject: "\(path): \(key)")
        return i
    }

    func optionalInt(_ key: String, limit: Int = ModelConfig.maximumDimension) throws -> Int? {
        guard let value = json[key], value != .null else { return nil }
        guard let i = value.intValue, i > 0 else { throw fail(key, "must be a positive integer, got \(value.serialized())") }
        try ModelConfig.checkBounds(i, limit: limit, subject: "\(path): \(key)")
        return i
    }

    func ids(_ key: String) throws -> [Int] {
        switch json[key] {
        case nil, .null?: return []
        case let .array(values)?:
            return try values.map { guard let i = $0.intValue else { throw fail(key, "must hold integers") }; return i }
        case let value?:
            guard let i = value.intValue else { throw fail(key, "must be an integer or a list of integers") }
            return [i]
        }
    }

    func bool(_ key: String) -> Bool? { json[key]?.boolValue }

    /// The keys every llama-like family shares; the family adjusts the rest.
    func decoderConfig(modelType: String, attentionBias: Bool) throws -> ModelConfig {
        let hiddenSize = try int("hidden_size")
        let intermediateSize = try int("intermediate_size")
        let layerCount = try int("num_hidden_layers", limit: ModelConfig.maximumLayers)
        let headCount = try int("num_attention_heads")
        let kvHeadCount = try optionalInt("num_key_value_heads") ?? headCount
        guard headCount % kvHeadCount == 0 else {
            throw fail("num_key_value_heads", "\(kvHeadCount) does not divide num_attention_heads \(headCount)")
        }
        let headDim: Int
        if let explicit = try optionalInt("head_dim") {
            headDim = explicit
        } else {
            guard hiddenSize % headCount == 0 else {
                throw fail("hidden_size", "\(hiddenSize) is not a multiple of num_attention_heads \(headCount) and head_dim is absent")
            }
            headDim = hiddenSize / headCount
        }
        guard headDim % 2 == 0 else { throw fail("head_dim", "\(headDim) is odd; rotary embeddings pair dimensions") }
        var config = ModelConfig(
            modelType: modelType,
            architectures: json["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            hiddenSize: hiddenSize, intermediateSize: intermediateSize, layerCount: layerCount,
            headCount: headCount, kvHeadCount: kvHeadCount, headDim: headDim, vocabSize: try int("vocab_size"),
            rmsNormEps: json["rms_norm_eps"]?.doubleValue ?? 1e-6,
            ropeTheta: json["rope_theta"]?.doubleValue ?? json["rope_parameters"]?["rope_theta"]?.doubleValue ?? 10000,
            maxPositionEmbeddings: try optionalInt("max_position_embeddings") ?? 2048,
            tieWordEmbeddings: bool("tie_word_embeddings") ?? false,
            attentionBias: attentionBias,
            bosTokenIds: try ids("bos_token_id"), eosTokenIds: try ids("eos_token_id"),
            dtype: json["dtype"]?.stringValue ?? json["torch_dtype"]?.stringValue)
        config.headDimInConfig = json["head_dim"].map { $0 != .null } ?? false
        return config
    }
}
