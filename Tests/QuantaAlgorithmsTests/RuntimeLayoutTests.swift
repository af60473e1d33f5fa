import QuantaAlgorithms
import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// The runtime gives the same logits from a Hugging Face folder (rotate-half q/k) and from the
/// GGUF Quanta writes (llama.cpp's interleaved q/k rows), and handles qwen2's q/k/v biases.
final class RuntimeLayoutTests: XCTestCase {
    func export(_ folder: String, to output: String) throws {
        var options = QuantizationOptions()
        options.pure = true
        _ = try GGUFExport(source: HuggingFaceSource(path: folder), preset: .f32, options: options, importance: nil, threads: 2).run(output: output)
    }

    func assertClose(_ a: [Float], _ b: [Float], _ tolerance: Float, _ message: String, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, line: line)
        var worst: Float = 0
        for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) }
        XCTAssertLessThanOrEqual(worst, tolerance, "\(message): largest difference \(worst)", line: line)
    }

    func testBundledModelFolderAndGGUFAgree() throws {
        let output = try TestSupport.temporaryFolder() + "/f32.gguf"
        try export(TestSupport.austenModel, to: output)
        let hf = try DecoderModel(path: TestSupport.austenModel), gguf = try DecoderModel(path: output)
        let tokens = [Array(hf.tokenizer.encode(try String(contentsOfFile: TestSupport.path("Calibration/austen-persuasion-eval.txt"), encoding: .utf8)).prefix(128))]
        XCTAssertEqual(gguf.tokenizer.encode("Sir Walter Elliot"), hf.tokenizer.encode("Sir Walter Elliot"))
        assertClose(try hf.logits(tokens), try gguf.logits(tokens), 1e-3, "HF vs GGUF logits")
    }

    /// A small random qwen2 model against a numpy forward pass with biases, then through GGUF.
    func testQwen2WithBiasesMatchesNumpy() throws {
        let folder = try checkAgainstNumpy(modelType: "qwen2", biases: true, window: nil)
        let gguf = folder + ".gguf"
        try export(folder, to: gguf)
        let file = try GGUFFile(path: gguf)
        XCTAssertEqual(file["general.architecture"], .string("qwen2"))
        XCTAssertNotNil(try? file.info("blk.1.attn_v.bias"))
        XCTAssertNil(file["qwen2.vocab_size"])  // as llama.cpp's converter writes qwen2
        XCTAssertNil(file["qwen2.rope.dimension_count"])
        assertClose(sampled(try DecoderModel(path: gguf).logits([RuntimeLayoutTests.ids])), numpyLogits, 2e-3, "qwen2 GGUF vs numpy")
    }

    /// Mistral's sliding window (3 positions here) against numpy's banded causal mask.
    func testMistralSlidingWindowMatchesNumpy() throws {
        _ = try checkAgainstNumpy(modelType: "mistral", biases: false, window: 3)
    }

    static let ids: [Int32] = [5, 17, 300, 2048, 4095, 9, 9, 1000]
    var numpyLogits: [Float] = []

    func sampled(_ logits: [Float]) -> [Float] {
        (0..<8).flatMap { t in stride(from: 0, to: 4096, by: 97).map { logits[t * 4096 + $0] } }
    }

    /// Writes a random model of `modelType` and checks our logits against numpy's; returns its folder.
    func checkAgainstNumpy(modelType: String, biases: Bool, window: Int?) throws -> String {
        let folder = try TestSupport.temporaryFolder() + "/" + modelType
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestSupport.austenModel + "/tokenizer.json", toPath: folder + "/tokenizer.json")
        let reference = try TestSupport.oracle("""
            import sys, json, numpy as np
            from safetensors.numpy import save_file
            model_type, biases, window = sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
            d, f, L, nh, nkv, V, hd = 64, 96, 2, 4, 2, 4096, 16
            rng = np.random.default_rng(5)
            w = {"model.embed_tokens.weight": rng.normal(0, 0.5, (V, d)), "model.norm.weight": 1 + rng.normal(0, 0.1, d),
                 "lm_head.weight": rng.normal(0, 0.2, (V, d))}
            for i in range(L):
                p = f"model.layers.{i}."
                w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, d)
                w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, d)
                for n, o, k in [("q", nh * hd, d), ("k", nkv * hd, d), ("v", nkv * hd, d)]:
                    w[p + f"self_attn.{n}_proj.weight"] = rng.normal(0, 0.2, (o, k))
                    if biases: w[p + f"self_attn.{n}_proj.bias"] = rng.normal(0, 0.2, o)
                w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.2, (d, nh * hd))
                w[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.2, (f, d))
                w[p + "mlp.up_proj.weight"] = rng.normal(0, 0.2, (f, d))
                w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.2, (d, f))
            w = {k: v.astype(np.float32) for k, v in w.items()}
            save_file(w, sys.argv[1] + "/model.safetensors", metadata={"format": "pt"})
            json.dump({"model_type": model_type, "architectures": ["X"], "hidden_size": d, "intermediate_size": f,
                       "sliding_window": window or None,
                       "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": nkv, "vocab_size": V,
                       "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 64, "tie_word_embeddings": False,
                       "bos_token_id": 0, "eos_token_id": 0}, open(sys.argv[1] + "/config.json", "w"))
            W = {k: v.astype(np.float64) for k, v in w.items()}
            ids = np.array([5, 17, 300, 2048, 4095, 9, 9, 1000])
            T = len(ids)
            rms = lambda x, g: g * x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6)
            inv = 1.0 / (1e6 ** (np.arange(0, hd, 2) / hd))
            ang = np.outer(np.arange(T), inv); cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
            rot = lambda x: np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], -1)
            x = W["model.embed_tokens.weight"][ids]
            for i in range(L):
                p = f"model.layers.{i}."
                h = rms(x, W[p + "input_layernorm.weight"])
                bias = lambda n: W[p + f"self_attn.{n}_proj.bias"] if biases else 0
                q = (h @ W[p + "self_attn.q_proj.weight"].T + bias("q")).reshape(T, nh, hd).transpose(1, 0, 2)
                k = (h @ W[p + "self_attn.k_proj.weight"].T + bias("k")).reshape(T, nkv, hd).transpose(1, 0, 2)
                v = (h @ W[p + "self_attn.v_proj.weight"].T + bias("v")).reshape(T, nkv, hd).transpose(1, 0, 2)
                q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
                k, v = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
                s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
                banned = np.triu(np.ones((T, T), bool), 1)
                if window: banned |= np.tril(np.ones((T, T), bool), -window)
                s[:, banned] = -np.inf
                a = np.exp(s - s.max(-1, keepdims=True)); a /= a.sum(-1, keepdims=True)
                x = x + (a @ v).transpose(1, 0, 2).reshape(T, nh * hd) @ W[p + "self_attn.o_proj.weight"].T
                h = rms(x, W[p + "post_attention_layernorm.weight"])
                g, u = h @ W[p + "mlp.gate_proj.weight"].T, h @ W[p + "mlp.up_proj.weight"].T
                x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "mlp.down_proj.weight"].T
            logits = rms(x, W["model.norm.weight"]) @ W["lm_head.weight"].T
            print(" ".join(repr(float(v)) for v in logits[:, ::97].ravel()))
            """, [folder, modelType, biases ? "1" : "0", window.map(String.init) ?? "0"])
        numpyLogits = reference.split(separator: " ").map { Float($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        let hf = try DecoderModel(path: folder)
        XCTAssertEqual(hf.config.attentionBias, biases)
        XCTAssertEqual(hf.config.slidingWindow, window)
        assertClose(sampled(try hf.logits([RuntimeLayoutTests.ids])), numpyLogits, 2e-3, "\(modelType) HF vs numpy")
        return folder
    }
}
