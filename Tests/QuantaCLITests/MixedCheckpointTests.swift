import QuantaAlgorithms
import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// Recipes and allocations into checkpoint folders: per-linear grids in GPTQModel's `dynamic`,
/// MLX's per-module entries and compressed-tensors' config groups, read back by their loaders.
final class MixedCheckpointTests: XCTestCase {
    func quanta(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> TestSupport.Run {
        try TestSupport.quanta(arguments, file: file, line: line)
    }

    static let gptqRecipe = """
        # quanta recipe (first matching rule wins)
        format: gptq
        default: w4g128
        rules:
          - match: 'blk\\.0\\.ffn_down'
            scheme: w8g128
          - match: 'blk\\.1\\.attn_[qkv]'
            scheme: w3g128
          - match: 'blk\\.2\\.attn_output'
            scheme: skip
        method:
          name: rtn
          damp: 0.01
          act_order: false

        """

    /// A GPTQ folder with 8-, 4- and 3-bit linears and one left in f16: `dynamic` says so with
    /// patterns Python's `re.match` applies to the unfused and the fused (vLLM) names; an
    /// unpacking written from GPTQModel's format description equals what `quanta convert`
    /// reads; the embedded recipe prints and writes the same bytes again.
    func testGPTQFolderWithDynamicGrids() throws {
        let folder = try TestSupport.temporaryFolder()
        let recipe = folder + "/r.yaml", out = folder + "/gptq", again = folder + "/again", fp32 = folder + "/fp32"
        try TestSupport.write(Array(Self.gptqRecipe.utf8), to: recipe)
        var run = try quanta(["quantize", TestSupport.austenModel, out, "--format", "gptq", "--recipe", recipe, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let summary = try JSONParser.parse(Array(run.stdout.utf8))
        XCTAssertEqual(summary["quantized"]?.intValue, 41)
        XCTAssertEqual(summary["grids"]?.serialized(), #"{"f16":1,"w3g128":3,"w4g128":37,"w8g128":1}"#)
        let config = try JSONParser.parse(FileSystem.read(out + "/quantize_config.json"))
        XCTAssertEqual(config["dynamic"]?.serialized(), """
            {"+:^model\\\\.layers\\\\.0\\\\.mlp\\\\.down_proj$":{"bits":8,"group_size":128,"sym":true},\
            "+:^model\\\\.layers\\\\.1\\\\.self_attn\\\\.(q_proj|k_proj|v_proj|qkv_proj)$":{"bits":3,"group_size":128,"sym":true},\
            "-:^model\\\\.layers\\\\.2\\\\.self_attn\\\\.o_proj$":{}}
            """)
        XCTAssertEqual(config["meta"]?["recipe"]?.stringValue, Self.gptqRecipe)
        run = try quanta(["inspect", out])
        XCTAssertTrue(run.stdout.contains("recipe (quantization.meta.recipe):\n  # quanta recipe (first matching rule wins)\n  format: gptq\n"), run.stdout)

        run = try quanta(["convert", out, fp32])
        XCTAssertEqual(run.status, 0, run.stderr)
        let check = try TestSupport.oracle("""
            import sys, json, re, numpy as np
            from safetensors.numpy import load_file
            q = load_file(sys.argv[1] + "/model.safetensors"); f = load_file(sys.argv[2] + "/model.safetensors")
            dynamic = json.load(open(sys.argv[1] + "/quantize_config.json"))["dynamic"]
            def bits(name):
                for key, value in dynamic.items():
                    if re.match(key[2:], name): return None if key.startswith("-:") else value.get("bits", 4)
                return 4
            seen, same = {}, True
            for key in sorted(k for k in f if "layers" in k and "_proj" in k):
                layer = key[:-len(".weight")]; b = bits(layer); seen[b] = seen.get(b, 0) + 1
                if b is None:
                    same &= layer + ".weight" in q and np.array_equal(q[layer + ".weight"].astype(np.float32), f[key]); continue
                qweight = q[layer + ".qweight"].view(np.uint32); g = q[layer + ".g_idx"]; rows = qweight.shape[1]; cols = g.shape[0]
                levels = np.unpackbits(qweight.T.copy().view(np.uint8), axis=1, bitorder="little").reshape(rows, cols, b) @ (1 << np.arange(b))
                qzeros = q[layer + ".qzeros"].view(np.uint32)
                zeros = np.unpackbits(qzeros.copy().view(np.uint8), axis=1, bitorder="little").reshape(qzeros.shape[0], rows, b) @ (1 << np.arange(b)) + 1
                w = q[layer + ".scales"].astype(np.float32)[g].T * (levels - zeros[g].T)
                same &= np.array_equal(w.astype(np.float32), f[key])
            print(same, sorted((str(k), v) for k, v in seen.items()), bits("model.layers.1.self_attn.qkv_proj"), bits("model.layers.0.mlp.gate_up_proj"))
            """, [out, fp32]).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(check, "True [('3', 3), ('4', 37), ('8', 1), ('None', 1)] 3 4")
        XCTAssertTrue(try quanta(["quantize", TestSupport.austenModel, folder + "/noted", "--format", "gptq", "--recipe", recipe]).stderr
            .contains("quanta: note: transformers reads one grid for every linear"))
        try assertGPTQModelLoads(out, fp32: fp32)

        try TestSupport.write(Array(try XCTUnwrap(config["meta"]?["recipe"]?.stringValue).utf8), to: recipe)
        run = try quanta(["quantize", TestSupport.austenModel, again, "--format", "gptq", "--recipe", recipe])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try FileSystem.read(out + "/model.safetensors"), try FileSystem.read(again + "/model.safetensors"))

        let split = Self.gptqRecipe.replacingOccurrences(of: "blk\\.1\\.attn_[qkv]", with: "blk\\.1\\.attn_v")
        try TestSupport.write(Array(split.utf8), to: recipe)
        run = try quanta(["quantize", TestSupport.austenModel, folder + "/split", "--format", "gptq", "--recipe", recipe])
        XCTAssertEqual(run.status, 69)
        XCTAssertEqual(run.stderr, "quanta: error: tensor 'blk.1.attn_v.weight': vLLM fuses q_proj, k_proj, v_proj into qkv_proj; a gptq folder gives them one scheme\n")
        run = try quanta(["quantize", TestSupport.austenModel, folder + "/mlx", "--format", "mlx", "--recipe", recipe])
        XCTAssertEqual(run.stderr, "quanta: error: \(recipe): is a gptq recipe; give --format gptq\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/split"))
    }

    /// GPTQModel's own loader (transformers drops `dynamic`) builds the 3-, 4- and 8-bit linears
    /// `dynamic` names, leaves the skipped one in f16, and dequantizes each (scales widened to fp32)
    /// to what `quanta convert` reads, bit for bit; its fp16 forward runs.
    func assertGPTQModelLoads(_ folder: String, fp32: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let present = "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ('torch', 'gptqmodel')) else 1)"
        guard try TestSupport.run(try TestSupport.python(), ["-c", present]).status == 0 else {
            throw XCTSkip("torch or gptqmodel absent from the oracle venv: run `bash Scripts/setup.sh --torch`")
        }
        let output = try TestSupport.oracle("""
            import sys, numpy as np, torch
            from gptqmodel import GPTQModel, BACKEND
            from gptqmodel.nn_modules.qlinear import BaseQuantLinear
            from safetensors.numpy import load_file
            model = GPTQModel.load(sys.argv[1], device="cpu", dtype=torch.float16, backend=BACKEND.TORCH)
            reference = load_file(sys.argv[2] + "/model.safetensors")
            quantized = [(n, m) for n, m in model.model.named_modules() if isinstance(m, BaseQuantLinear)]
            exact = 0
            with torch.no_grad():
                for name, module in quantized:
                    scales = module.scales
                    module.scales = scales.float()
                    exact += int(np.array_equal(module.dequantize_weight().float().t().contiguous().numpy(), reference[name + ".weight"]))
                    module.scales = scales
                logits = model.model(torch.tensor([[0, 920, 310, 259, 1953, 465, 73, 1166, 552, 3051]])).logits
            print("RESULT", len(quantized), exact, sorted({m.bits for _, m in quantized}), type(model.model.model.layers[2].self_attn.o_proj).__name__,
                  bool(torch.isfinite(logits).all()))
            """, [folder, fp32], file: file, line: line)
        let last = output.split(separator: "\n").last { $0.hasPrefix("RESULT ") }.map(String.init)
        XCTAssertEqual(last, "RESULT 41 41 [3, 4, 8] Linear True", output, file: file, line: line)
    }

    /// mlx-lm loads a folder whose v_proj has 6-bit groups of 32, one o_proj in f16 and a
    /// down_proj in 8 bits, as those layers; its logits follow the weights `quanta convert` reads.
    func testMixedMLXFolderLoadsInMLX() throws {
        _ = try TestSupport.mlxPython()
        let folder = try TestSupport.temporaryFolder()
        let recipe = folder + "/m.yaml", out = folder + "/mlx", fp32 = folder + "/fp32"
        try TestSupport.write(Array("""
            format: mlx
            default: w4g64
            rules:
              - match: 'blk\\.0\\.ffn_down'
                scheme: w8g64
              - match: 'blk\\.1\\.attn_v'
                scheme: w6g32:asym
              - match: 'blk\\.2\\.attn_output'
                scheme: skip

            """.utf8), to: recipe)
        var run = try quanta(["quantize", TestSupport.austenModel, out, "--format", "mlx", "--recipe", recipe])
        XCTAssertEqual(run.status, 0, run.stderr)
        let config = try JSONParser.parse(FileSystem.read(out + "/config.json"))
        XCTAssertEqual(config["quantization"]?["model.layers.1.self_attn.v_proj"]?.serialized(), #"{"group_size":32,"bits":6,"mode":"affine"}"#)
        XCTAssertNil(config["quantization"]?["model.layers.2.self_attn.o_proj"])
        run = try quanta(["convert", out, fp32])
        XCTAssertEqual(run.status, 0, run.stderr)
        let check = try TestSupport.oracle("""
            import sys, numpy as np, mlx.core as mx
            from mlx_lm import load
            model, _ = load(sys.argv[1]); reference, _ = load(sys.argv[2])
            v = model.model.layers[1].self_attn.v_proj; o = model.model.layers[2].self_attn.o_proj; d = model.model.layers[0].mlp.down_proj
            ids = mx.array([[0, 920, 310, 259, 1953, 465, 73, 1166, 552, 3051, 12, 40]])
            a = np.array(model(ids).astype(mx.float32)); b = np.array(reference(ids).astype(mx.float32))
            print(type(v).__name__, v.bits, v.group_size, type(o).__name__, d.bits, "%.4f" % np.abs(a - b).max(), int((a.argmax(-1) == b.argmax(-1)).sum()))
            """, [out, fp32]).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        XCTAssertEqual(Array(check[0..<5]), ["QuantizedLinear", "6", "32", "Linear", "8"])
        XCTAssertLessThan(try XCTUnwrap(Double(check[5])), 0.1, "mlx-lm runs the quantized folder in float16")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(Int(check[6])), 11)
    }

    /// transformers (with compressed-tensors) loads a folder of three config groups and an ignored
    /// linear, and its logits equal those of the weights `quanta convert` reads.
    func testMixedCompressedTensorsFolderLoadsInTransformers() throws {
        let python = try TestSupport.python()
        guard try TestSupport.run(python, ["-c", "import torch, transformers, compressed_tensors"]).status == 0 else {
            throw XCTSkip("torch, transformers and compressed-tensors absent from the oracle venv: run `bash Scripts/setup.sh --torch`")
        }
        let folder = try TestSupport.temporaryFolder()
        let recipe = folder + "/c.yaml", out = folder + "/ct", fp32 = folder + "/fp32"
        try TestSupport.write(Array("""
            format: compressed-tensors
            default: w4g128
            rules:
              - match: 'blk\\.0\\.ffn_down'
                scheme: w8g128
              - match: 'blk\\.1\\.attn_[qkv]'
                scheme: w8g-1
              - match: 'blk\\.2\\.attn_output'
                scheme: skip

            """.utf8), to: recipe)
        var run = try quanta(["quantize", TestSupport.austenModel, out, "--format", "compressed-tensors", "--recipe", recipe])
        XCTAssertEqual(run.status, 0, run.stderr)
        let config = try JSONParser.parse(FileSystem.read(out + "/config.json"))
        let quantization = try XCTUnwrap(config["quantization_config"])
        XCTAssertEqual(quantization["config_groups"]?.objectValue?.map(\.0), ["group_0", "group_1", "group_2"])
        XCTAssertEqual(quantization["config_groups"]?["group_1"]?["targets"]?.serialized(), #"["model.layers.0.mlp.down_proj"]"#)
        XCTAssertEqual(quantization["ignore"]?.serialized(), #"["lm_head","model.layers.2.self_attn.o_proj"]"#)
        run = try quanta(["convert", out, fp32])
        XCTAssertEqual(run.status, 0, run.stderr)
        let loaded = try TestSupport.oracle("""
            import sys, torch
            from transformers import AutoModelForCausalLM
            m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
            r = AutoModelForCausalLM.from_pretrained(sys.argv[2], dtype=torch.float32)
            ids = torch.tensor([[0, 920, 310, 259, 1953, 465, 73, 1166, 552, 3051]])
            with torch.no_grad(): a = m(ids).logits; b = r(ids).logits
            print("%.6f" % float((a - b).abs().max() / b.abs().max()), int((a.argmax(-1) == b.argmax(-1)).sum()))
            """, [out, fp32]).split(separator: "\n").last!.split(separator: " ")
        XCTAssertLessThan(try XCTUnwrap(Double(loaded[0])), 1e-3, "largest logit difference relative to the largest logit")
        XCTAssertEqual(Int(loaded[1]), 10)
    }

    /// `--target-bpw` into a GPTQ folder: the linears' stored bytes stay within the budget, the
    /// grids are the candidates', q/k/v and gate/up share theirs, and the embedded recipe writes
    /// the same folder again.
    func testTargetBitsPerWeightIntoAGPTQFolder() throws {
        let folder = try TestSupport.temporaryFolder()
        let text = TestSupport.path("Calibration/calib-c4.txt")
        let out = folder + "/mix", again = folder + "/again", recipe = folder + "/r.yaml"
        var run = try quanta(["quantize", TestSupport.austenModel, out, "--format", "gptq", "--target-bpw", "4.3", "--eval", text,
                              "--slice-ctx", "64", "--slice-chunks", "2", "--candidates", "w3g128,w4g128,w8g128", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let summary = try JSONParser.parse(Array(run.stdout.utf8))
        let grids = try XCTUnwrap(summary["grids"]?.objectValue).map(\.0)
        XCTAssertTrue(Set(grids).isSubset(of: ["w3g128", "w4g128", "w8g128"]) && grids.count >= 2, "\(grids)")
        let folderModel = try ModelFolder(path: out)
        var bytes = 0, parameters = 0
        for layer in 0..<6 {
            for name in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] {
                let prefix = "model.layers.\(layer).\(name)"
                for part in ["qweight", "qzeros", "scales", "g_idx"] { bytes += try folderModel.weights.info(prefix + "." + part).byteCount }
                let g = try folderModel.weights.info(prefix + ".g_idx").shape[0], rows = try folderModel.weights.info(prefix + ".scales").shape[1]
                parameters += g * rows
            }
        }
        XCTAssertEqual(summary["allocated_bytes"]?.intValue, bytes)
        XCTAssertLessThanOrEqual(Double(bytes * 8) / Double(parameters), 4.3)
        XCTAssertGreaterThan(Double(bytes * 8) / Double(parameters), 4.2, "the budget is used")
        let config = try JSONParser.parse(FileSystem.read(out + "/quantize_config.json"))
        let embedded = try XCTUnwrap(config["meta"]?["recipe"]?.stringValue)
        let parsed = try Recipe.parse(embedded, file: "embedded")
        for layer in 0..<6 {
            let schemes = ["attn_q", "attn_k", "attn_v"].map { parsed.scheme(for: "blk.\(layer).\($0).weight") }
            XCTAssertTrue(schemes.allSatisfy { $0 == schemes[0] }, "q/k/v of block \(layer) take one grid:\n\(embedded)")
            XCTAssertEqual(parsed.scheme(for: "blk.\(layer).ffn_gate.weight"), parsed.scheme(for: "blk.\(layer).ffn_up.weight"))
        }
        try TestSupport.write(Array(embedded.utf8), to: recipe)
        run = try quanta(["quantize", TestSupport.austenModel, again, "--format", "gptq", "--recipe", recipe])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try FileSystem.read(out + "/model.safetensors"), try FileSystem.read(again + "/model.safetensors"))
    }

    /// A grid candidate's measured sensitivity is the mean KLD `quanta eval` gives for a GPTQ
    /// folder where that linear alone is on the grid (every other one kept in f16, hence the
    /// tolerance); grids are measured on the decoder's linears only.
    func testGridSensitivityEqualsEvalOfTheSingleLinearFolder() throws {
        let folder = try TestSupport.temporaryFolder()
        let text = TestSupport.path("Calibration/calib-c4.txt")
        let recipe = folder + "/one.yaml", out = folder + "/one"
        try TestSupport.write(Array("""
            format: gptq
            default: w4g128
            rules:
              - match: '^blk\\.3\\.ffn_down\\.weight$'
                scheme: w3g128
              - match: 'blk'
                scheme: skip

            """.utf8), to: recipe)
        var run = try quanta(["quantize", TestSupport.austenModel, out, "--format", "gptq", "--recipe", recipe])
        XCTAssertEqual(run.status, 0, run.stderr)
        run = try quanta(["eval", out, "--text", text, "--ctx", "64", "--chunks", "3", "--baseline", TestSupport.austenModel, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let expected = try XCTUnwrap(JSONParser.parse(Array(run.stdout.utf8))["drift"]?["mean_kld"]?.doubleValue)
        run = try quanta(["sensitivity", TestSupport.austenModel, "--eval", text, "--ctx", "64", "--chunks", "3", "--candidates", "w3g128", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let tensors = try XCTUnwrap(JSONParser.parse(Array(run.stdout.utf8))["tensors"]?.arrayValue)
        let down = try XCTUnwrap(tensors.first { $0["name"] == .string("blk.3.ffn_down.weight") })
        XCTAssertEqual(try XCTUnwrap(down["kld"]?["w3g128"]?.doubleValue), expected, accuracy: expected * 2e-3)
        let unmeasured = tensors.filter { $0["kld"]?["w3g128"]?.doubleValue == nil }.compactMap { $0["name"]?.stringValue }
        XCTAssertEqual(unmeasured.sorted(), ["output.weight", "token_embd.weight"])
        run = try quanta(["sensitivity", TestSupport.austenModel, "--eval", text, "--ctx", "64", "--chunks", "1", "--candidates", "w4g128+gptq"])
        XCTAssertEqual(run.stderr, "quanta: error: candidate w4g128+gptq: GPTQ candidates need statistics with Gram matrices (--stats)\n")
    }
}
