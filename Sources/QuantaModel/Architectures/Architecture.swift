import QuantaCore
import QuantaIO

/// What a tensor is in a decoder: the seams between file names, the runtime, the plan and the
/// observers all speak in roles.
public enum TensorRole: String, Sendable, CaseIterable {
    case embedding, attentionNorm, q, k, v, qBias, kBias, vBias, qNorm, kNorm, o, attentionPostNorm, ffnNorm, gate, up, down, ffnPostNorm
    case outputNorm, output
    /// Phi-3's fused projections: q, k and v rows stacked (`qkv_proj`, GGUF `attn_qkv`), and
    /// gate then up rows (`gate_up_proj`, GGUF `ffn_up`).
    case qkv, gateUp
    /// LongRoPE frequency divisors (GGUF `rope_factors_long` / `rope_factors_short`): made from
    /// the config, not stored in Hugging Face folders.
    case ropeFactorsLong, ropeFactorsShort

    /// Whether this is one of the fused projections (not yet run by GPTQ, AWQ or the sensitivity analysis).
    public var isFused: Bool { self == .qkv || self == .gateUp }

    /// An RMSNorm weight (these carry the architecture's `normWeightOffset`).
    public var isNorm: Bool {
        [.attentionNorm, .qNorm, .kNorm, .attentionPostNorm, .ffnNorm, .ffnPostNorm, .outputNorm].contains(self)
    }

    /// The linear layer this tensor is the weight of, when it is one.
    public var linear: LinearRole? {
        switch self {
        case .q: .q
        case .k: .k
        case .v: .v
        case .o: .o
        case .gate: .gate
        case .up: .up
        case .down: .down
        case .output: .output
        default: nil
        }
    }
}

/// One tensor of an architecture: its names in both layouts and its shape.
public struct TensorSpec: Sendable, Equatable {
    public let role: TensorRole
    /// Decoder block index; nil for tensors outside the blocks.
    public let layer: Int?
    /// Hugging Face name ("model.layers.0.self_attn.q_proj.weight").
    public let hfName: String
    /// GGUF name as llama.cpp's converter writes it ("blk.0.attn_q.weight").
    public let ggufName: String
    /// Outermost first, as safetensors stores it (`[out, in]` for matrices).
    public let shape: [Int]
    /// Heads whose rotary halves llama.cpp interleaves in GGUF rows (llama's q and k); nil: same rows in both layouts.
    public let ggufPermutationHeads: Int?
    /// Added to the Hugging Face values to get the GGUF values (1 for Gemma's norm weights,
    /// which llama.cpp's converter stores as the multiplier 1 + w); 0 for every other tensor.
    public var ggufOffset: Float = 0
    /// The values of a tensor the GGUF gets from the config (no Hugging Face tensor: `hfName` is empty).
    public var generated: [Float]? = nil

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A model family: everything Quanta knows about one architecture lives in the family's file.
/// A new architecture is one file conforming to this protocol plus one line in `ArchitectureRegistry`.
///
/// The llama-like defaults below (config keys, tensor table, GGUF keys) serve every family that
/// does not override them.
public protocol Architecture: Sendable {
    /// Hugging Face `model_type` values this family reads; the first is its registry key.
    var modelTypes: [String] { get }
    /// `general.architecture` this family writes to GGUF (mistral writes "llama").
    var ggufArchitecture: String { get }
    /// Whether GGUF files of `ggufArchitecture` open with this family (false for aliases such as mistral).
    var readsGGUF: Bool { get }
    /// Hugging Face class written by `quanta convert` ("LlamaForCausalLM").
    var hfClass: String { get }
    /// How llama.cpp's converter lays out q/k rows for this architecture in GGUF.
    var ggufRopeLayout: RopeLayout { get }
    /// Decodes config.json; `path` names the file in errors.
    func config(hf json: JSONValue, path: String) throws -> ModelConfig
    /// Decodes the `<arch>.*` GGUF metadata of `file`.
    func config(gguf file: GGUFFile) throws -> ModelConfig
    /// Every tensor the architecture has for `config`, in block order.
    func tensors(_ config: ModelConfig) -> [TensorSpec]
    /// The `<arch>.*` keys llama.cpp's converter writes (general.* and tokenizer.* come from the GGUF sink).
    func ggufMetadata(_ config: ModelConfig) -> [(key: String, value: GGUFValue)]
    /// config.json members for `quanta convert` (GGUF to Hugging Face).
    func hfConfig(_ config: ModelConfig) -> [(String, JSONValue)]
    /// Throws when llama.cpp would run a GGUF of `config` differently from the model itself
    /// (a setting its GGUF metadata cannot carry).
    func checkGGUF(_ config: ModelConfig) throws
    /// How llama.cpp's converter writes this family's `tokenizer.model` vocabulary.
    var sentencePieceExport: SentencePieceExport { get }
}

/// The family-specific rules of llama.cpp's converter for a SentencePiece `tokenizer.model`.
public enum SentencePieceExport: Sendable {
    /// `_set_vocab_sentencepiece`.
    case llama
    /// `Phi3MiniModel.set_vocab`: added tokens control when special, else user-defined, tokenizer.json's too.
    case phi3
    /// `_set_vocab_sentencepiece`, then `add_space_prefix` false (Gemma adds no "▁" prefix).
    case gemma
}

extension Architecture {
    public var readsGGUF: Bool { true }
    public var ggufRopeLayout: RopeLayout { ggufArchitecture == "llama" ? .interleaved : .halves }
    public func checkGGUF(_ config: ModelConfig) throws {}
    public var sentencePieceExport: SentencePieceExport { .llama }

    /// The HF config decoder shared by llama-like families (no biases, no q/k norm, no window).
    public func config(hf json: JSONValue, path: String) throws -> ModelConfig {
        let reader = ConfigReader(json: json, path: path)
        return try reader.decoderConfig(modelType: modelTypes[0], attentionBias: reader.bool("attention_bias") ?? false)
    }

    public func config(gguf file: GGUFFile) throws -> ModelConfig {
        try GGUFConfigReader(file: file, arch: ggufArchitecture).decoderConfig(modelType: modelTypes[0])
    }

    public func tensors(_ c: ModelConfig) -> [TensorSpec] {
        let interleaved = ggufRopeLayout == .interleaved
        func spec(_ role: TensorRole, _ layer: Int?, _ hf: String, _ gguf: String, _ shape: [Int], heads: Int? = nil) -> TensorSpec {
            let prefix = layer.map { ("model.layers.\($0).", "blk.\($0).") } ?? ("", "")
            return TensorSpec(role: role, layer: layer, hfName: c.hfTensorPrefix + prefix.0 + hf, ggufName: prefix.1 + gguf, shape: shape,
                              ggufPermutationHeads: interleaved ? heads : nil, ggufOffset: role.isNorm ? c.normWeightOffset : 0)
        }
        let d = c.hiddenSize, f = c.intermediateSize
        var specs = [spec(.embedding, nil, "model.embed_tokens.weight", "token_embd.weight", [c.vocabSize, d])]
        for l in 0..<c.layerCount {
            specs.append(spec(.attentionNorm, l, "input_layernorm.weight", "attn_norm.weight", [d]))
            specs.append(spec(.q, l, "self_attn.q_proj.weight", "attn_q.weight", [c.qDim, d], heads: c.headCount))
            specs.append(spec(.k, l, "self_attn.k_proj.weight", "attn_k.weight", [c.kvDim, d], heads: c.kvHeadCount))
            specs.append(spec(.v, l, "self_attn.v_proj.weight", "attn_v.weight", [c.kvDim, d]))
            if c.attentionBias {
                specs.append(spec(.qBias, l, "self_attn.q_proj.bias", "attn_q.bias", [c.qDim], heads: c.headCount))
                specs.append(spec(.kBias, l, "self_attn.k_proj.bias", "attn_k.bias", [c.kvDim], heads: c.kvHeadCount))
                specs.append(spec(.vBias, l, "self_attn.v_proj.bias", "attn_v.bias", [c.kvDim]))
            }
            if c.qkNorm {
                specs.append(spec(.qNorm, l, "self_attn.q_norm.weight", "attn_q_norm.weight", [c.headDim]))
                specs.append(spec(.kNorm, l, "self_attn.k_norm.weight", "attn_k_norm.weight", [c.headDim]))
            }
            specs.append(spec(.o, l, "self_attn.o_proj.weight", "attn_output.weight", [d, c.qDim]))
            if c.postNorms {  // Gemma's names: the pre-feed-forward norm is ffn_norm in GGUF
                specs.append(spec(.attentionPostNorm, l, "post_attention_layernorm.weight", "post_attention_norm.weight", [d]))
                specs.append(spec(.ffnNorm, l, "pre_feedforward_layernorm.weight", "ffn_norm.weight", [d]))
            } else {
                specs.append(spec(.ffnNorm, l, "post_attention_layernorm.weight", "ffn_norm.weight", [d]))
            }
            specs.append(spec(.gate, l, "mlp.gate_proj.weight", "ffn_gate.weight", [f, d]))
            specs.append(spec(.up, l, "mlp.up_proj.weight", "ffn_up.weight", [f, d]))
            specs.append(spec(.down, l, "mlp.down_proj.weight", "ffn_down.weight", [d, f]))
            if c.postNorms { specs.append(spec(.ffnPostNorm, l, "post_feedforward_layernorm.weight", "post_ffw_norm.weight", [d])) }
        }
        specs.append(spec(.outputNorm, nil, "model.norm.weight", "output_norm.weight", [d]))
        if !c.tieWordEmbeddings { specs.append(spec(.output, nil, "lm_head.weight", "output.weight", [c.vocabSize, d])) }
        return specs
    }

    /// llama.cpp's `LlamaModel` keys: the base keys (`attention.key_length` / `value_length`
    /// when config.json names head_dim) plus `vocab_size` and `rope.dimension_count`.
    public func ggufMetadata(_ c: ModelConfig) -> [(key: String, value: GGUFValue)] {
        decoderGGUFMetadata(c, keyLength: c.headDimInConfig || c.headDim * c.headCount != c.hiddenSize, vocabAndRope: true)
    }

    /// The `<arch>.*` keys of llama.cpp's `TextModel`; `keyLength` adds `attention.key_length` /
    /// `value_length`, `vocabAndRope` the `vocab_size` and `rope.dimension_count` its llama converter adds.
    public func decoderGGUFMetadata(_ c: ModelConfig, keyLength: Bool, vocabAndRope: Bool) -> [(key: String, value: GGUFValue)] {
        let arch = ggufArchitecture
        var kv: [(key: String, value: GGUFValue)] = [
            ("\(arch).block_count", .uint32(UInt32(c.layerCount))),
            ("\(arch).context_length", .uint32(UInt32(c.maxPositionEmbeddings))),
            ("\(arch).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(arch).feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("\(arch).attention.head_count", .uint32(UInt32(c.headCount))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(c.kvHeadCount))),
            ("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(c.rmsNormEps))),
        ]
        if keyLength {
            kv.append(("\(arch).attention.key_length", .uint32(UInt32(c.headDim))))
            kv.append(("\(arch).attention.value_length", .uint32(UInt32(c.headDim))))
        }
        if vocabAndRope {
            kv.append(("\(arch).vocab_size", .uint32(UInt32(c.vocabSize))))
            kv.append(("\(arch).rope.dimension_count", .uint32(UInt32(c.headDim))))
        }
        return kv
    }

    public func hfConfig(_ c: ModelConfig) -> [(String, JSONValue)] {
        func id(_ v: Int?) -> JSONValue { v.map { .integer(Int64($0)) } ?? .null }
        return [
            ("architectures", .array([.string(hfClass)])),
            ("attention_bias", .bool(c.attentionBias)),
            ("bos_token_id", id(c.bosTokenIds.first)),
            ("eos_token_id", id(c.eosTokenIds.first)),
            ("head_dim", .integer(Int64(c.headDim))),
            ("hidden_act", .string("silu")),
            ("hidden_size", .integer(Int64(c.hiddenSize))),
            ("intermediate_size", .integer(Int64(c.intermediateSize))),
            ("max_position_embeddings", .integer(Int64(c.maxPositionEmbeddings))),
            ("mlp_bias", .bool(false)),
            ("model_type", .string(c.modelType)),
            ("num_attention_heads", .integer(Int64(c.headCount))),
            ("num_hidden_layers", .integer(Int64(c.layerCount))),
            ("num_key_value_heads", .integer(Int64(c.kvHeadCount))),
            ("rms_norm_eps", .number(c.rmsNormEps)),
            ("rope_theta", .number(c.ropeTheta)),
            ("tie_word_embeddings", .bool(c.tieWordEmbeddings)),
            ("torch_dtype", .string("float32")),
            ("vocab_size", .integer(Int64(c.vocabSize))),
        ]
    }
}

/// Reads `<arch>.*` GGUF metadata, checking every number before it sizes anything.
struct GGUFConfigReader {
    let file: GGUFFile
    let arch: String

    func positive(_ key: String, limit: Int = ModelConfig.maximumDimension) throws -> Int {
        guard let v = file["\(arch).\(key)"]?.intValue, v > 0 else {
            throw QuantaError.malformed(file.path, "missing or invalid '\(arch).\(key)'")
        }
        try ModelConfig.checkBounds(v, limit: limit, subject: "\(file.path): \(arch).\(key)")
        return v
    }

    func optionalPositive(_ key: String, limit: Int = ModelConfig.maximumDimension) throws -> Int? {
        guard let value = file["\(arch).\(key)"] else { return nil }
        guard let v = value.intValue, v > 0 else {
            throw QuantaError.malformed(file.path, "'\(arch).\(key)' must be a positive integer, got \(value.summary())")
        }
        try ModelConfig.checkBounds(v, limit: limit, subject: "\(file.path): \(arch).\(key)")
        return v
    }

    func decoderConfig(modelType: String) throws -> ModelConfig {
        let hiddenSize = try positive("embedding_length")
        let headCount = try positive("attention.head_count")
        let kvHeadCount = try optionalPositive("attention.head_count_kv") ?? headCount
        let headDim = try optionalPositive("attention.key_length") ?? optionalPositive("rope.dimension_count") ?? hiddenSize / headCount
        let vocabSize = try optionalPositive("vocab_size") ?? file["tokenizer.ggml.tokens"]?.arrayValue?.count ?? 0
        guard headCount % kvHeadCount == 0 else {
            throw QuantaError.malformed(file.path, "\(arch).attention.head_count \(headCount) is not a multiple of head_count_kv \(kvHeadCount)")
        }
        guard vocabSize > 0 else { throw QuantaError.malformed(file.path, "no vocabulary size (\(arch).vocab_size or tokenizer.ggml.tokens)") }
        guard headDim > 0, headDim % 2 == 0 else {
            throw QuantaError.malformed(file.path, "head width \(headDim) (key_length, rope.dimension_count or embedding_length / head_count) is not a positive even number")
        }
        func id(_ key: String) -> [Int] { file["tokenizer.ggml.\(key)"]?.intValue.map { [$0] } ?? [] }
        return ModelConfig(
            modelType: modelType,
            hiddenSize: hiddenSize, intermediateSize: try positive("feed_forward_length"), layerCount: try positive("block_count", limit: ModelConfig.maximumLayers),
            headCount: headCount, kvHeadCount: kvHeadCount, headDim: headDim, headDimInConfig: file["\(arch).attention.key_length"] != nil,
            vocabSize: vocabSize,
            rmsNormEps: Double(Float(file["\(arch).attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-5)),
            ropeTheta: Double(Float(file["\(arch).rope.freq_base"]?.doubleValue ?? 10000)),
            maxPositionEmbeddings: try optionalPositive("context_length") ?? 2048,
            tieWordEmbeddings: file.tensor("output.weight") == nil,
            attentionBias: file.tensor("blk.0.attn_q.bias") != nil,
            qkNorm: file.tensor("blk.0.attn_q_norm.weight") != nil,
            slidingWindow: file["\(arch).attention.sliding_window"]?.intValue == 0 ? nil : try optionalPositive("attention.sliding_window"),
            bosTokenIds: id("bos_token_id"), eosTokenIds: id("eos_token_id"))
    }
}
