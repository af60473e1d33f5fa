import QuantaCore
import QuantaIO

/// Gemma 3's text model (`gemma3_text`, Gemma3ForCausalLM): embeddings times sqrt(hidden_size),
/// RMSNorm as `x * (1 + w)`, GeGLU with tanh-approximated GELU, RMSNorms before and after both
/// attention and the feed-forward network, per-head q/k norms, attention scaled by
/// 1/sqrt(`query_pre_attn_scalar`), sliding-window layers (`layer_types`, or every
/// `sliding_window_pattern`-th layer global) rotating with `rope_local_base_freq` and global
/// layers with `rope_theta` (and linear `rope_scaling`), tied embeddings by default.
///
/// GGUF architecture `gemma3` as llama.cpp's converter writes it: norm weights stored as 1 + w,
/// the pre-feed-forward norm as `ffn_norm`, `post_attention_norm` / `post_ffw_norm`,
/// `rope.freq_base_swa` and `attention.sliding_window`. llama.cpp's runtime does not read the
/// sliding pattern unless `attention.sliding_window_pattern` is written (it assumes 6), nor
/// `query_pre_attn_scalar` (it uses 1/sqrt(head_dim), or 1/sqrt(hidden/heads) for 62 layers):
/// Quanta writes the pattern when it is not 6 and refuses a GGUF whose scale llama.cpp would get wrong.
/// Multimodal `gemma3` folders (Gemma3ForConditionalGeneration) are read for their text model:
/// `text_config` over the top-level keys, the `language_model.` tensors; the vision tower and
/// projector are left out, as llama.cpp's converter leaves them out of the text GGUF.
public struct Gemma3: Architecture {
    public init() {}
    public var modelTypes: [String] { ["gemma3_text", "gemma3"] }
    public var ggufArchitecture: String { "gemma3" }
    public var hfClass: String { "Gemma3ForCausalLM" }
    public var sentencePieceExport: SentencePieceExport { .gemma }

    /// The sliding pattern llama.cpp assumes when the GGUF has no `attention.sliding_window_pattern`.
    static let llamaCppPeriod = 6

    /// Layers 0..<count with every `period`-th global (layer i slides unless (i + 1) % period == 0).
    static func slidingLayers(count: Int, period: Int) -> [Bool] {
        (0..<count).map { ($0 + 1) % period != 0 }
    }

    public func config(hf root: JSONValue, path: String) throws -> ModelConfig {
        // A multimodal `gemma3` folder: its text_config over the top-level keys, as llama.cpp's
        // converter merges them; the text model's tensors are under "language_model.".
        var json = root
        let multimodal = root["model_type"]?.stringValue == "gemma3"
        if multimodal {
            guard case let .object(top) = root, case let .object(text)? = root["text_config"] else {
                throw QuantaError.malformed("\(path): text_config", "a gemma3 (multimodal) config needs a text_config object")
            }
            json = .object(top.filter { key, _ in !text.contains { $0.0 == key } } + text)
        }
        let reader = ConfigReader(json: json, path: path)
        func set(_ key: String) -> Bool { json[key].map { $0 != .null } ?? false }
        for key in ["final_logit_softcapping", "attn_logit_softcapping"] where set(key) {
            throw QuantaError.unsupported("\(path): \(key)", "logit soft-capping (\(json[key]!.serialized())) is not implemented for gemma3")
        }
        if reader.bool("use_bidirectional_attention") == true {
            throw QuantaError.unsupported("\(path): use_bidirectional_attention", "only causal gemma3 models are supported")
        }
        if reader.bool("attention_bias") == true {
            throw QuantaError.unsupported("\(path): attention_bias", "gemma3 attention biases are not supported")
        }
        let activation = json["hidden_activation"]?.stringValue ?? json["hidden_act"]?.stringValue ?? "gelu_pytorch_tanh"
        guard activation == "gelu_pytorch_tanh" else {
            throw QuantaError.unsupported("\(path): hidden_activation", "'\(activation)' (gemma3 supports gelu_pytorch_tanh)")
        }
        var c = try reader.decoderConfig(modelType: modelTypes[0], attentionBias: false)
        if multimodal {
            c.hfTensorPrefix = "language_model."
            c.architectures = root["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        c.tieWordEmbeddings = reader.bool("tie_word_embeddings") ?? true
        if !set("max_position_embeddings") { c.maxPositionEmbeddings = 131072 }
        c.qkNorm = true
        c.postNorms = true
        c.normWeightOffset = 1
        c.scalesEmbeddings = true
        c.activation = .geluTanh
        let scalar = json["query_pre_attn_scalar"]?.doubleValue ?? 256
        guard scalar > 0, scalar.isFinite else { throw reader.fail("query_pre_attn_scalar", "must be positive, got \(scalar)") }
        c.queryPreAttentionScalar = scalar
        c.slidingWindow = json["sliding_window"] == nil ? 4096 : try reader.optionalInt("sliding_window")
        c.slidingLayers = try layerTypes(reader, layerCount: c.layerCount)

        // transformers 5: rope_parameters per layer type; 4.x: rope_theta, rope_scaling, rope_local_base_freq.
        let perType = json["rope_parameters"]?["full_attention"] != nil
        let full = perType ? json["rope_parameters"]?["full_attention"] : json["rope_scaling"]
        let sliding = perType ? json["rope_parameters"]?["sliding_attention"] : nil
        c.ropeTheta = full?["rope_theta"]?.doubleValue ?? json["rope_theta"]?.doubleValue ?? 1_000_000
        c.ropeLocalTheta = sliding?["rope_theta"]?.doubleValue ?? json["rope_local_base_freq"]?.doubleValue ?? 10000
        c.ropeLinearFactor = try linearFactor(full, reader: reader, key: perType ? "rope_parameters.full_attention" : "rope_scaling")
        if (try linearFactor(sliding, reader: reader, key: "rope_parameters.sliding_attention")) != nil {
            throw reader.fail("rope_parameters.sliding_attention", "scaled RoPE on sliding layers is not supported")
        }
        return c
    }

    /// `layer_types`, else every `sliding_window_pattern`-th layer global (transformers' default 6).
    private func layerTypes(_ reader: ConfigReader, layerCount: Int) throws -> [Bool] {
        if let types = reader.json["layer_types"]?.arrayValue {
            guard types.count == layerCount else {
                throw reader.fail("layer_types", "has \(types.count) entries for \(layerCount) layers")
            }
            return try types.map {
                switch $0.stringValue {
                case "sliding_attention": return true
                case "full_attention": return false
                default: throw reader.fail("layer_types", "\($0.serialized()) is neither \"sliding_attention\" nor \"full_attention\"")
                }
            }
        }
        let period = try reader.optionalInt("sliding_window_pattern") ?? reader.optionalInt("_sliding_window_pattern") ?? 6
        return Gemma3.slidingLayers(count: layerCount, period: period)
    }

    /// The factor of a linear RoPE scaling entry; nil for none or the default type.
    private func linearFactor(_ rope: JSONValue?, reader: ConfigReader, key: String) throws -> Double? {
        guard let rope, rope != .null else { return nil }
        let type = rope["rope_type"]?.stringValue ?? rope["type"]?.stringValue ?? "default"
        switch type {
        case "default": return nil
        case "linear":
            guard let factor = rope["factor"]?.doubleValue, factor > 0, factor.isFinite else {
                throw reader.fail(key, "linear scaling needs a positive factor")
            }
            return factor == 1 ? nil : factor
        default: throw reader.fail(key, "RoPE type '\(type)' is not supported for gemma3 (default, linear)")
        }
    }

    /// As llama.cpp's loader reads it: the sliding pattern (6 unless written), the attention
    /// scale from the layer count, the SWA base 10000 unless written.
    public func config(gguf file: GGUFFile) throws -> ModelConfig {
        let reader = GGUFConfigReader(file: file, arch: ggufArchitecture)
        var c = try reader.decoderConfig(modelType: modelTypes[0])
        if file["gemma3.final_logit_softcapping"] != nil {
            throw QuantaError.unsupported(file.path, "gemma3.final_logit_softcapping is not implemented")
        }
        if let rows = file.tensor("token_embd.weight")?.dimensions.last, rows > 0 { c.vocabSize = rows }
        c.qkNorm = true
        c.postNorms = true
        c.normWeightOffset = 1
        c.scalesEmbeddings = true
        c.activation = .geluTanh
        c.queryPreAttentionScalar = Double(c.layerCount == 62 ? c.hiddenSize / c.headCount : c.headDim)
        if c.slidingWindow != nil {
            let period = try reader.optionalPositive("attention.sliding_window_pattern") ?? Gemma3.llamaCppPeriod
            c.slidingLayers = Gemma3.slidingLayers(count: c.layerCount, period: period)
            c.ropeLocalTheta = Double(Float(file["gemma3.rope.freq_base_swa"]?.doubleValue ?? 10000))
        }
        switch file["gemma3.rope.scaling.type"]?.stringValue {
        case nil, "none"?: break
        case "linear"?:
            guard let factor = file["gemma3.rope.scaling.factor"]?.doubleValue, factor > 0 else {
                throw QuantaError.malformed(file.path, "linear RoPE scaling without a positive gemma3.rope.scaling.factor")
            }
            c.ropeLinearFactor = factor == 1 ? nil : Double(Float(factor))
        case let other?:
            throw QuantaError.unsupported(file.path, "gemma3.rope.scaling.type '\(other)' (Quanta runs none and linear)")
        }
        return c
    }

    /// The period llama.cpp needs to slide the same layers (nil when it needs none written,
    /// i.e. its default 6 fits); throws when no period does.
    func slidingPeriod(_ c: ModelConfig) throws -> Int? {
        let sliding = (0..<c.layerCount).map { c.slides(layer: $0) }
        guard sliding.contains(true) else { return nil }
        if sliding == Gemma3.slidingLayers(count: c.layerCount, period: Gemma3.llamaCppPeriod) { return nil }
        guard let period = (1...c.layerCount + 1).first(where: { sliding == Gemma3.slidingLayers(count: c.layerCount, period: $0) }) else {
            throw QuantaError.unsupported("gemma3 layer_types", "llama.cpp slides every layer but each n-th; this model's sliding layers \(sliding) follow no such period")
        }
        return period
    }

    public func checkGGUF(_ c: ModelConfig) throws {
        let llamaCpp = Double(c.layerCount == 62 ? c.hiddenSize / c.headCount : c.headDim)
        if let scalar = c.queryPreAttentionScalar, scalar != llamaCpp {
            throw QuantaError.unsupported("gemma3 query_pre_attn_scalar", "llama.cpp scales gemma3 attention by 1/sqrt(\(Int(llamaCpp))) (\(c.layerCount == 62 ? "hidden_size / heads for 62 layers" : "head_dim")) and no GGUF key changes that; this model's \(scalar) would run differently")
        }
        _ = try slidingPeriod(c)
    }

    /// The keys and order of llama.cpp's `Gemma3Model` converter (no `vocab_size` or
    /// `rope.dimension_count`); `attention.sliding_window_pattern` only when llama.cpp's default 6 does not fit.
    public func ggufMetadata(_ c: ModelConfig) -> [(key: String, value: GGUFValue)] {
        let arch = ggufArchitecture
        var kv: [(key: String, value: GGUFValue)] = [
            ("\(arch).block_count", .uint32(UInt32(c.layerCount))),
            ("\(arch).context_length", .uint32(UInt32(c.maxPositionEmbeddings))),
            ("\(arch).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(arch).feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("\(arch).attention.head_count", .uint32(UInt32(c.headCount))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(c.kvHeadCount))),
        ]
        if let factor = c.ropeLinearFactor {
            kv.append(("\(arch).rope.scaling.type", .string("linear")))
            kv.append(("\(arch).rope.scaling.factor", .float32(Float(factor))))
        }
        kv.append(("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))))
        if let local = c.ropeLocalTheta { kv.append(("\(arch).rope.freq_base_swa", .float32(Float(local)))) }
        kv += [
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(c.rmsNormEps))),
            ("\(arch).attention.key_length", .uint32(UInt32(c.headDim))),
            ("\(arch).attention.value_length", .uint32(UInt32(c.headDim))),
        ]
        if let window = c.slidingWindow, (0..<c.layerCount).contains(where: { c.slides(layer: $0) }) {
            kv.append(("\(arch).attention.sliding_window", .uint32(UInt32(window))))
            if let period = try? slidingPeriod(c) { kv.append(("\(arch).attention.sliding_window_pattern", .uint32(UInt32(period)))) }
        }
        return kv
    }

    public func hfConfig(_ c: ModelConfig) -> [(String, JSONValue)] {
        func id(_ v: Int?) -> JSONValue { v.map { .integer(Int64($0)) } ?? .null }
        func number(_ x: Double) -> JSONValue { x == x.rounded() && abs(x) < 1e15 ? .integer(Int64(x)) : .number(x) }
        var full: [(String, JSONValue)] = [("rope_theta", .number(c.ropeTheta)), ("rope_type", .string("default"))]
        if let factor = c.ropeLinearFactor { full = [("factor", .number(factor)), ("rope_theta", .number(c.ropeTheta)), ("rope_type", .string("linear"))] }
        let types = (0..<c.layerCount).map { JSONValue.string(c.slides(layer: $0) ? "sliding_attention" : "full_attention") }
        return [
            ("architectures", .array([.string(hfClass)])),
            ("attention_bias", .bool(false)),
            ("attn_logit_softcapping", .null),
            ("bos_token_id", id(c.bosTokenIds.first)),
            ("eos_token_id", id(c.eosTokenIds.first)),
            ("final_logit_softcapping", .null),
            ("head_dim", .integer(Int64(c.headDim))),
            ("hidden_activation", .string("gelu_pytorch_tanh")),
            ("hidden_size", .integer(Int64(c.hiddenSize))),
            ("intermediate_size", .integer(Int64(c.intermediateSize))),
            ("layer_types", .array(types)),
            ("max_position_embeddings", .integer(Int64(c.maxPositionEmbeddings))),
            ("model_type", .string(c.modelType)),
            ("num_attention_heads", .integer(Int64(c.headCount))),
            ("num_hidden_layers", .integer(Int64(c.layerCount))),
            ("num_key_value_heads", .integer(Int64(c.kvHeadCount))),
            ("query_pre_attn_scalar", number(c.queryPreAttentionScalar ?? Double(c.headDim))),
            ("rms_norm_eps", .number(c.rmsNormEps)),
            ("rope_parameters", .object([
                ("full_attention", .object(full)),
                ("sliding_attention", .object([("rope_theta", .number(c.ropeLocalTheta ?? c.ropeTheta)), ("rope_type", .string("default"))])),
            ])),
            ("sliding_window", id(c.slidingWindow)),
            ("tie_word_embeddings", .bool(c.tieWordEmbeddings)),
            ("torch_dtype", .string("float32")),
            ("vocab_size", .integer(Int64(c.vocabSize))),
        ]
    }
}
