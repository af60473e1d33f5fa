import QuantaCore

/// How llama.cpp's converter names and lays out llama-family tensors in GGUF.
public enum LlamaGGUFNames {
    /// The GGUF name of a Hugging Face llama-family tensor, or nil for tensors llama.cpp drops
    /// (rotary caches).
    public static func ggufName(forHF name: String) -> String? {
        switch name {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        let parts = name.split(separator: ".").map(String.init)
        guard parts.count >= 5, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]) else { return nil }
        let rest = parts[3...].joined(separator: ".")
        let suffixes: [(String, String)] = [
            ("input_layernorm.weight", "attn_norm.weight"),
            ("post_attention_layernorm.weight", "ffn_norm.weight"),
            ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.q_proj.bias", "attn_q.bias"),
            ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.k_proj.bias", "attn_k.bias"),
            ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.v_proj.bias", "attn_v.bias"),
            ("self_attn.o_proj.weight", "attn_output.weight"),
            ("mlp.gate_proj.weight", "ffn_gate.weight"),
            ("mlp.up_proj.weight", "ffn_up.weight"),
            ("mlp.down_proj.weight", "ffn_down.weight"),
        ]
        guard let match = suffixes.first(where: { $0.0 == rest }) else { return nil }
        return "blk.\(layer).\(match.1)"
    }

    /// The Hugging Face name of a GGUF llama tensor (inverse of `ggufName(forHF:)`).
    public static func hfName(forGGUF name: String) -> String? {
        switch name {
        case "token_embd.weight": return "model.embed_tokens.weight"
        case "output_norm.weight": return "model.norm.weight"
        case "output.weight": return "lm_head.weight"
        default: break
        }
        let parts = name.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        let probe = "model.layers.\(layer)."
        for hf in ["input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
                   "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
                   "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"]
        where ggufName(forHF: probe + hf) == name {
            return probe + hf
        }
        return nil
    }

    /// The head count whose rotary halves llama.cpp interleaves for this GGUF tensor:
    /// `heads` for attn_q, `kvHeads` for attn_k (weights and biases), nil otherwise.
    public static func permutationHeads(forGGUF name: String, heads: Int, kvHeads: Int) -> Int? {
        if name.hasSuffix(".attn_q.weight") || name.hasSuffix(".attn_q.bias") { return heads }
        if name.hasSuffix(".attn_k.weight") || name.hasSuffix(".attn_k.bias") { return kvHeads }
        return nil
    }

    /// llama.cpp's q/k row permutation from the HF rotate-half layout to interleaved pairs:
    /// `w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).reshape(rows, cols)`.
    /// `inverse` undoes it.
    public static func permuteRows(_ values: [Float], rows: Int, columns: Int, heads: Int, inverse: Bool = false) throws -> [Float] {
        guard heads > 0, rows % (2 * heads) == 0, values.count == rows * columns else {
            throw QuantaError(.invalidArgument, "q/k permutation", "\(rows) rows cannot be split into \(heads) heads of rotary pairs")
        }
        let half = rows / heads / 2
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for h in 0..<heads {
                    for i in 0..<half {
                        for j in 0..<2 {
                            let hfRow = h * 2 * half + j * half + i
                            let ggufRow = h * 2 * half + i * 2 + j
                            let (from, to) = inverse ? (ggufRow, hfRow) : (hfRow, ggufRow)
                            (dst.baseAddress! + to * columns).update(from: src.baseAddress! + from * columns, count: columns)
                        }
                    }
                }
            }
        }
        return out
    }
}
