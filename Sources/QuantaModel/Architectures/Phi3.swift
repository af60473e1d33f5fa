#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuantaCore
import QuantaIO

/// Phi-3, Phi-3.5 and Phi-4-mini (`phi3`, Phi3ForCausalLM): the Llama block with q, k and v in
/// one fused projection (`qkv_proj`, rows q then k then v) and gate and up in another
/// (`gate_up_proj`, gate rows first), rotate-half RoPE over the first
/// `partial_rotary_factor` x head_dim dimensions of each head, and LongRoPE (`rope_type`
/// `longrope`, or `su`): per-frequency divisors, short ones while a sequence fits
/// `original_max_position_embeddings` and long ones beyond, with cosines and sines scaled by
/// sqrt(1 + ln(s) / ln(original)), s = max_position_embeddings / original.
///
/// GGUF architecture `phi3` as llama.cpp's converter writes it: the fused tensors stay fused
/// (`attn_qkv`, and `ffn_up` holding gate then up), `rope_factors_long` / `rope_factors_short`
/// made from the config, `rope.dimension_count` the rotated width, and
/// `attention.sliding_window` written (0 for none). llama.cpp runs phi3 files without the
/// sliding window, so GGUF files read back without it, as they run there.
public struct Phi3: Architecture {
    public init() {}
    public var modelTypes: [String] { ["phi3"] }
    public var ggufArchitecture: String { "phi3" }
    public var hfClass: String { "Phi3ForCausalLM" }
    public var sentencePieceExport: SentencePieceExport { .phi3 }

    public func config(hf json: JSONValue, path: String) throws -> ModelConfig {
        let reader = ConfigReader(json: json, path: path)
        let activation = json["hidden_act"]?.stringValue ?? "silu"
        guard activation == "silu" else {
            throw QuantaError.unsupported("\(path): hidden_act", "'\(activation)' (phi3 supports silu)")
        }
        if reader.bool("attention_bias") == true {
            throw QuantaError.unsupported("\(path): attention_bias", "phi3 attention biases are not supported")
        }
        var c = try reader.decoderConfig(modelType: modelTypes[0], attentionBias: false)
        c.slidingWindow = try reader.optionalInt("sliding_window")
        // transformers 5 keeps the RoPE settings in rope_parameters, 4.x in rope_scaling and top-level keys.
        let key = json["rope_parameters"].map { $0 == .null ? "rope_scaling" : "rope_parameters" } ?? "rope_scaling"
        let rope = json[key].flatMap { $0 == .null ? nil : $0 }
        if let theta = rope?["rope_theta"]?.doubleValue { c.ropeTheta = theta }
        guard c.ropeTheta > 0, c.ropeTheta.isFinite else { throw reader.fail("rope_theta", "must be positive, got \(c.ropeTheta)") }
        let fraction = rope?["partial_rotary_factor"]?.doubleValue ?? json["partial_rotary_factor"]?.doubleValue ?? 1
        guard fraction > 0, fraction <= 1 else { throw reader.fail("partial_rotary_factor", "must be in (0, 1], got \(fraction)") }
        let rotated = Int(Double(c.headDim) * fraction)
        guard rotated >= 2, rotated % 2 == 0 else {
            throw reader.fail("partial_rotary_factor", "\(fraction) x head_dim \(c.headDim) gives \(rotated) rotated dimensions; RoPE needs an even number")
        }
        c.ropeDimensions = rotated == c.headDim ? nil : rotated
        let original = rope?["original_max_position_embeddings"]?.intValue ?? json["original_max_position_embeddings"]?.intValue
        if let original, original <= 0 { throw reader.fail("original_max_position_embeddings", "must be a positive integer, got \(original)") }
        if let original { try ModelConfig.checkBounds(original, subject: "\(reader.path): original_max_position_embeddings") }
        c.originalContext = original
        let type = rope?["rope_type"]?.stringValue ?? rope?["type"]?.stringValue ?? "default"
        switch type {
        case "default": break
        case "longrope", "su":
            c.longRope = try longRope(rope!, config: c, reader: reader, key: key)
        default:
            throw reader.fail(key, "RoPE type '\(type)' is not supported for phi3 (default, longrope)")
        }
        c.tieWordEmbeddings = reader.bool("tie_word_embeddings") ?? false
        return c
    }

    /// The short and long factors (`rotaryDimensions / 2` positive numbers each) and the
    /// attention factor as transformers computes it: `attention_factor` if given, else from
    /// `factor` or max_position_embeddings / original.
    private func longRope(_ rope: JSONValue, config c: ModelConfig, reader: ConfigReader, key: String) throws -> LongRope {
        guard let original = c.originalContext else {
            throw reader.fail("original_max_position_embeddings", "LongRoPE needs the original context length")
        }
        func factors(_ name: String) throws -> [Float] {
            guard let values = rope[name]?.arrayValue else { throw reader.fail("\(key).\(name)", "LongRoPE needs a list of numbers") }
            let numbers = values.compactMap(\.doubleValue)
            guard numbers.count == values.count, numbers.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw reader.fail("\(key).\(name)", "must hold positive numbers")
            }
            guard numbers.count == c.rotaryDimensions / 2 else {
                throw reader.fail("\(key).\(name)", "has \(numbers.count) entries; \(c.rotaryDimensions) rotated dimensions need \(c.rotaryDimensions / 2)")
            }
            return numbers.map { Float($0) }
        }
        let attention: Double
        if let given = rope["attention_factor"]?.doubleValue {
            attention = given
        } else {
            let factor = rope["factor"]?.doubleValue ?? Double(c.maxPositionEmbeddings) / Double(original)
            attention = factor <= 1 ? 1 : (1 + log(factor) / log(Double(original))).squareRoot()
        }
        guard attention > 0, attention.isFinite else { throw reader.fail("\(key).attention_factor", "must be positive, got \(attention)") }
        return LongRope(short: try factors("short_factor"), long: try factors("long_factor"), attentionFactor: attention)
    }

    /// As llama.cpp reads a phi3 file: head width hidden / heads, the rotated width from
    /// `rope.dimension_count`, LongRoPE from the factor tensors, no sliding window.
    public func config(gguf file: GGUFFile) throws -> ModelConfig {
        let reader = GGUFConfigReader(file: file, arch: ggufArchitecture)
        var c = try reader.decoderConfig(modelType: modelTypes[0])
        guard c.hiddenSize % c.headCount == 0 else {
            throw QuantaError.malformed(file.path, "phi3.embedding_length \(c.hiddenSize) is not a multiple of the head count \(c.headCount)")
        }
        c.headDim = try reader.optionalPositive("attention.key_length") ?? c.hiddenSize / c.headCount
        let rotated = try reader.optionalPositive("rope.dimension_count") ?? c.headDim
        guard rotated % 2 == 0, rotated <= c.headDim else {
            throw QuantaError.malformed(file.path, "phi3.rope.dimension_count \(rotated) must be even and at most the head width \(c.headDim)")
        }
        c.ropeDimensions = rotated == c.headDim ? nil : rotated
        c.slidingWindow = nil
        c.originalContext = try reader.optionalPositive("rope.scaling.original_context_length")
        if let long = file.tensor("rope_factors_long.weight") {
            guard let short = file.tensor("rope_factors_short.weight") else {
                throw QuantaError.malformed(file.path, "rope_factors_long.weight without rope_factors_short.weight")
            }
            func factors(_ info: GGUFTensorInfo) throws -> [Float] {
                guard info.type == .f32, info.elementCount == rotated / 2 else {
                    throw QuantaError.malformed("\(file.path): tensor '\(info.name)'", "must hold \(rotated / 2) F32 values (rope.dimension_count / 2)")
                }
                let values = file.rawBytes(info).withMemoryRebound(to: Float.self) { Array($0) }
                guard values.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                    throw QuantaError.malformed("\(file.path): tensor '\(info.name)'", "RoPE factors must be positive")
                }
                return values
            }
            let attention = file["phi3.rope.scaling.attn_factor"]?.doubleValue ?? 1
            guard attention > 0, attention.isFinite else {
                throw QuantaError.malformed(file.path, "phi3.rope.scaling.attn_factor must be positive, got \(attention)")
            }
            c.longRope = LongRope(short: try factors(short), long: try factors(long), attentionFactor: Double(Float(attention)))
        }
        return c
    }

    public func tensors(_ c: ModelConfig) -> [TensorSpec] {
        func spec(_ role: TensorRole, _ layer: Int?, _ hf: String, _ gguf: String, _ shape: [Int]) -> TensorSpec {
            let prefix = layer.map { ("model.layers.\($0).", "blk.\($0).") } ?? ("", "")
            return TensorSpec(role: role, layer: layer, hfName: prefix.0 + hf, ggufName: prefix.1 + gguf, shape: shape, ggufPermutationHeads: nil)
        }
        let d = c.hiddenSize, f = c.intermediateSize
        var specs: [TensorSpec] = []
        if let rope = c.longRope {  // the converter writes these first
            var long = TensorSpec(role: .ropeFactorsLong, layer: nil, hfName: "", ggufName: "rope_factors_long.weight",
                                  shape: [rope.long.count], ggufPermutationHeads: nil)
            long.generated = rope.long
            var short = TensorSpec(role: .ropeFactorsShort, layer: nil, hfName: "", ggufName: "rope_factors_short.weight",
                                   shape: [rope.short.count], ggufPermutationHeads: nil)
            short.generated = rope.short
            specs += [long, short]
        }
        specs.append(spec(.embedding, nil, "model.embed_tokens.weight", "token_embd.weight", [c.vocabSize, d]))
        for l in 0..<c.layerCount {
            specs.append(spec(.attentionNorm, l, "input_layernorm.weight", "attn_norm.weight", [d]))
            specs.append(spec(.qkv, l, "self_attn.qkv_proj.weight", "attn_qkv.weight", [c.qDim + 2 * c.kvDim, d]))
            specs.append(spec(.o, l, "self_attn.o_proj.weight", "attn_output.weight", [d, c.qDim]))
            specs.append(spec(.ffnNorm, l, "post_attention_layernorm.weight", "ffn_norm.weight", [d]))
            specs.append(spec(.gateUp, l, "mlp.gate_up_proj.weight", "ffn_up.weight", [2 * f, d]))
            specs.append(spec(.down, l, "mlp.down_proj.weight", "ffn_down.weight", [d, f]))
        }
        specs.append(spec(.outputNorm, nil, "model.norm.weight", "output_norm.weight", [d]))
        if !c.tieWordEmbeddings { specs.append(spec(.output, nil, "lm_head.weight", "output.weight", [c.vocabSize, d])) }
        return specs
    }

    /// llama.cpp's head width is hidden / heads for phi3 (its converter writes no key_length).
    public func checkGGUF(_ c: ModelConfig) throws {
        if c.headDim * c.headCount != c.hiddenSize {
            throw QuantaError.unsupported("phi3 head_dim", "llama.cpp runs phi3 with heads of hidden_size / num_attention_heads = \(c.hiddenSize / c.headCount); this model's \(c.headDim) would run differently")
        }
    }

    /// The keys and order of llama.cpp's `Phi3MiniModel` converter (`attention.sliding_window` 0 for none).
    public func ggufMetadata(_ c: ModelConfig) -> [(key: String, value: GGUFValue)] {
        let arch = ggufArchitecture
        // The converter writes the attention factor first (while making the factor tensors, before the other keys).
        var kv: [(key: String, value: GGUFValue)] = c.longRope.map { [("\(arch).rope.scaling.attn_factor", .float32(Float($0.attentionFactor)))] } ?? []
        kv += [
            ("\(arch).context_length", .uint32(UInt32(c.maxPositionEmbeddings))),
            ("\(arch).rope.scaling.original_context_length", .uint32(UInt32(c.originalContext ?? c.maxPositionEmbeddings))),
            ("\(arch).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(arch).feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("\(arch).block_count", .uint32(UInt32(c.layerCount))),
            ("\(arch).attention.head_count", .uint32(UInt32(c.headCount))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(c.kvHeadCount))),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(c.rmsNormEps))),
            ("\(arch).rope.dimension_count", .uint32(UInt32(c.rotaryDimensions))),
            ("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))),
            ("\(arch).attention.sliding_window", .uint32(UInt32(c.slidingWindow ?? 0))),
        ]
        return kv
    }

    public func hfConfig(_ c: ModelConfig) -> [(String, JSONValue)] {
        func id(_ v: Int?) -> JSONValue { v.map { .integer(Int64($0)) } ?? .null }
        func numbers(_ values: [Float]) -> JSONValue { .array(values.map { .number(Double($0)) }) }
        var rope: [(String, JSONValue)] = [
            ("partial_rotary_factor", .number(Double(c.rotaryDimensions) / Double(c.headDim))),
            ("rope_theta", .number(c.ropeTheta)),
            ("rope_type", .string(c.longRope == nil ? "default" : "longrope")),
        ]
        if let long = c.longRope {
            rope += [("attention_factor", .number(long.attentionFactor)), ("long_factor", numbers(long.long)),
                     ("original_max_position_embeddings", .integer(Int64(c.originalContext ?? c.maxPositionEmbeddings))),
                     ("short_factor", numbers(long.short))]
        }
        return [
            ("architectures", .array([.string(hfClass)])),
            ("bos_token_id", id(c.bosTokenIds.first)),
            ("eos_token_id", id(c.eosTokenIds.first)),
            ("hidden_act", .string("silu")),
            ("hidden_size", .integer(Int64(c.hiddenSize))),
            ("intermediate_size", .integer(Int64(c.intermediateSize))),
            ("max_position_embeddings", .integer(Int64(c.maxPositionEmbeddings))),
            ("model_type", .string(c.modelType)),
            ("num_attention_heads", .integer(Int64(c.headCount))),
            ("num_hidden_layers", .integer(Int64(c.layerCount))),
            ("num_key_value_heads", .integer(Int64(c.kvHeadCount))),
            ("original_max_position_embeddings", .integer(Int64(c.originalContext ?? c.maxPositionEmbeddings))),
            ("rms_norm_eps", .number(c.rmsNormEps)),
            ("rope_parameters", .object(rope)),
            ("sliding_window", id(c.slidingWindow)),
            ("tie_word_embeddings", .bool(c.tieWordEmbeddings)),
            ("torch_dtype", .string("float32")),
            ("vocab_size", .integer(Int64(c.vocabSize))),
        ]
    }
}
