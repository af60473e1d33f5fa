import QuantaCore
import QuantaFormats
import QuantaIO

/// How q and k rows pair their rotary dimensions: Hugging Face stores the two halves of each
/// head apart (`rotate_half`), llama.cpp's llama GGUFs interleave them.
public enum RopeLayout: Sendable {
    case halves
    case interleaved
}

/// The fp32 weights of a Llama-family decoder; matrices row-major `[out, in]`.
public struct LlamaWeights: Sendable {
    public struct Layer: Sendable {
        public var attentionNorm: [Float]
        public var q: [Float], k: [Float], v: [Float], o: [Float]
        public var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
        public var ffnNorm: [Float]
        public var gate: [Float], up: [Float], down: [Float]
        /// Storage types of the linear weights (GGUF sources), for runtime emulation.
        public var types: [LinearRole: GGMLType] = [:]
    }

    public var embedding: [Float]
    public var layers: [Layer]
    public var outputNorm: [Float]
    /// nil when tied to the embedding.
    public var output: [Float]?
    public var ropeLayout: RopeLayout
    /// Storage type of the output head (GGUF sources).
    public var outputType: GGMLType?

    /// Loads every tensor with `load(name)` (HF or GGUF naming chosen by `gguf`), checking shapes.
    static func load(_ config: TransformerConfig, gguf: Bool, ropeLayout: RopeLayout, source: String,
                     _ load: (String) throws -> [Float]?) throws -> LlamaWeights {
        func tensor(_ hf: String, _ ggufName: String, _ count: Int) throws -> [Float] {
            let name = gguf ? ggufName : hf
            guard let values = try load(name) else { throw QuantaError.malformed(source, "missing tensor '\(name)'") }
            guard values.count == count else {
                throw QuantaError.malformed("\(source): tensor '\(name)'", "has \(values.count) values, the config implies \(count)")
            }
            return values
        }
        func optional(_ hf: String, _ ggufName: String, _ count: Int) throws -> [Float]? {
            guard config.attentionBias else { return nil }
            return try tensor(hf, ggufName, count)
        }
        let d = config.hiddenSize, f = config.intermediateSize
        var layers: [Layer] = []
        for i in 0..<config.layerCount {
            let hf = "model.layers.\(i).", g = "blk.\(i)."
            layers.append(Layer(
                attentionNorm: try tensor(hf + "input_layernorm.weight", g + "attn_norm.weight", d),
                q: try tensor(hf + "self_attn.q_proj.weight", g + "attn_q.weight", config.qDim * d),
                k: try tensor(hf + "self_attn.k_proj.weight", g + "attn_k.weight", config.kvDim * d),
                v: try tensor(hf + "self_attn.v_proj.weight", g + "attn_v.weight", config.kvDim * d),
                o: try tensor(hf + "self_attn.o_proj.weight", g + "attn_output.weight", d * config.qDim),
                qBias: try optional(hf + "self_attn.q_proj.bias", g + "attn_q.bias", config.qDim),
                kBias: try optional(hf + "self_attn.k_proj.bias", g + "attn_k.bias", config.kvDim),
                vBias: try optional(hf + "self_attn.v_proj.bias", g + "attn_v.bias", config.kvDim),
                ffnNorm: try tensor(hf + "post_attention_layernorm.weight", g + "ffn_norm.weight", d),
                gate: try tensor(hf + "mlp.gate_proj.weight", g + "ffn_gate.weight", f * d),
                up: try tensor(hf + "mlp.up_proj.weight", g + "ffn_up.weight", f * d),
                down: try tensor(hf + "mlp.down_proj.weight", g + "ffn_down.weight", d * f)))
        }
        return LlamaWeights(
            embedding: try tensor("model.embed_tokens.weight", "token_embd.weight", config.vocabSize * d),
            layers: layers,
            outputNorm: try tensor("model.norm.weight", "output_norm.weight", d),
            output: config.tieWordEmbeddings ? nil : try tensor("lm_head.weight", "output.weight", config.vocabSize * d),
            ropeLayout: ropeLayout)
    }

    /// From a Hugging Face folder (F32/F16/BF16 safetensors).
    public static func load(folder model: HFModelFolder, config: TransformerConfig) throws -> LlamaWeights {
        try load(config, gguf: false, ropeLayout: .halves, source: model.path) { name in
            model.weights.contains(name) ? try model.weights.floatTensor(name).storage : nil
        }
    }

    /// From a GGUF file, dequantizing every tensor to fp32.
    public static func load(gguf file: GGUFFile, config: TransformerConfig) throws -> LlamaWeights {
        // llama.cpp's llama converter interleaves q/k rotary pairs; qwen2 keeps the HF halves.
        let layout: RopeLayout = config.architecture == "qwen2" ? .halves : .interleaved
        var weights = try load(config, gguf: true, ropeLayout: layout, source: file.path) { name in
            guard let info = try? file.info(name) else { return nil }
            do {
                return try Quantization.dequantize(info.type, file.rawBytes(info), count: info.elementCount)
            } catch let error as QuantaError {
                throw error.within("\(file.path): tensor '\(name)'")
            }
        }
        let names: [(LinearRole, String)] = [(.q, "attn_q"), (.k, "attn_k"), (.v, "attn_v"), (.o, "attn_output"),
                                             (.gate, "ffn_gate"), (.up, "ffn_up"), (.down, "ffn_down")]
        for i in weights.layers.indices {
            for (role, name) in names { weights.layers[i].types[role] = try? file.info("blk.\(i).\(name).weight").type }
        }
        weights.outputType = (try? file.info("output.weight"))?.type ?? (try? file.info("token_embd.weight"))?.type
        return weights
    }
}
