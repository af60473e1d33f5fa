import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// `quantize --format mlx`, true-sequential `--format gptq --data`, and reading both back
/// (`convert`, `inspect`, the model loader).
final class CheckpointFormatsTests: XCTestCase {
    /// An MLX folder: mx.dequantize of every stored linear equals what `quanta convert` reads
    /// back, and mlx-lm loads the folder as quantized layers whose logits follow the fp32 weights.
    func testMLXFolderLoadsInMLX() throws {
        _ = try TestSupport.mlxPython()
        let folder = try TestSupport.temporaryFolder()
        let quanta = try TestSupport.quantaExecutable()
        let mlx = folder + "/mlx", fp32 = folder + "/fp32"
        let run = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, mlx, "--format", "mlx", "--method", "rtn", "--bits", "3",
                                               "--group-size", "32", "--asym", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let summary = try JSONParser.parse(Array(run.stdout.utf8))
        XCTAssertEqual(summary["quantized"]?.intValue, 42)
        XCTAssertEqual(summary["format"]?.stringValue, "mlx")
        let config = try JSONParser.parse(FileSystem.read(mlx + "/config.json"))
        XCTAssertEqual(config["quantization"]?["bits"]?.intValue, 3)
        XCTAssertEqual(config["quantization"]?["group_size"]?.intValue, 32)
        XCTAssertEqual(config["quanta"]?["method"]?.stringValue, "rtn")
        let converted = try TestSupport.run(quanta, ["convert", mlx, fp32])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        XCTAssertEqual(try JSONParser.parse(FileSystem.read(fp32 + "/config.json"))["quantization"], nil)
        let inspect = try TestSupport.run(quanta, ["inspect", mlx])
        XCTAssertTrue(inspect.stdout.contains("  parameters:    6,819,072\n"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("quantization.layout      string  \"mlx-affine\""), inspect.stdout)
        let check = try TestSupport.oracle("""
            import sys, numpy as np, mlx.core as mx
            from mlx_lm import load
            from safetensors.numpy import load_file
            q = load_file(sys.argv[1] + "/model.safetensors"); f = load_file(sys.argv[2] + "/model.safetensors")
            layers = [k[:-len(".scales")] for k in q if k.endswith(".scales")]
            same = all(np.array_equal(np.array(mx.dequantize(mx.array(q[p + ".weight"]), mx.array(q[p + ".scales"]), mx.array(q[p + ".biases"]),
                                                               group_size=32, bits=3)).astype(np.float32), f[p + ".weight"]) for p in layers)
            model, _ = load(sys.argv[1]); reference, _ = load(sys.argv[2])
            kind = type(model.model.layers[2].mlp.down_proj).__name__
            ids = mx.array([[0, 920, 310, 259, 1953, 465, 73, 1166, 552, 3051, 12, 40]])
            a = np.array(model(ids).astype(mx.float32)); b = np.array(reference(ids).astype(mx.float32))
            print(len(layers), same, kind, q["model.layers.0.self_attn.q_proj.weight"].dtype, "%.4f" % np.abs(a - b).max(),
                  int((a.argmax(-1) == b.argmax(-1)).sum()))
            """, [mlx, fp32]).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(Array(check[0..<4]), ["42", "True", "QuantizedLinear", "uint32"])
        // mlx-lm runs the quantized folder in float16 against the converted folder's float32.
        XCTAssertLessThan(Double(check[4])!, 0.1)
        XCTAssertGreaterThanOrEqual(Int(check[5])!, 11)
        // Quanta's loader reads the MLX folder as the converted weights.
        XCTAssertEqual(try DecoderModel(path: mlx).weights.layers[4].gate, try DecoderModel(path: fp32).weights.layers[4].gate)
    }

    /// `--data`: GPTQ block by block and inside each block q/k/v -> o -> gate/up -> down; the
    /// same bytes at one and two threads; act order with dynamic groups is refused for MLX.
    func testTrueSequentialCheckpoint() throws {
        let folder = try TestSupport.temporaryFolder()
        let quanta = try TestSupport.quantaExecutable()
        var files: [[UInt8]] = []
        for threads in ["1", "2"] {
            let out = folder + "/seq-\(threads)"
            let run = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, out, "--format", "gptq", "--method", "gptq",
                                                   "--data", TestSupport.path("Calibration/calib-wiki.txt"), "--samples", "8", "--seq-len", "64",
                                                   "--asym", "--threads", threads, "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(try JSONParser.parse(Array(run.stdout.utf8))["true_sequential"], .bool(true))
            files.append(try TestSupport.read(out + "/model.safetensors"))
        }
        XCTAssertEqual(files[0], files[1])
        let config = try JSONParser.parse(FileSystem.read(folder + "/seq-1/quantize_config.json"))
        XCTAssertEqual(config["true_sequential"], .bool(true))
        XCTAssertEqual(config["meta"]?["calibration"]?.stringValue, TestSupport.path("Calibration/calib-wiki.txt"))
        let model = try DecoderModel(path: folder + "/seq-1")
        XCTAssertEqual(model.weights.layers[0].q.count, 256 * 256)

        let refused = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, folder + "/x", "--format", "mlx", "--method", "gptq",
                                                   "--data", TestSupport.path("Calibration/calib-wiki.txt"), "--act-order"])
        XCTAssertEqual(refused.status, 64)
        XCTAssertTrue(refused.stderr.contains("--act-order: MLX groups are contiguous columns; add --static-groups to keep them so"), refused.stderr)
        XCTAssertEqual(FileSystem.kind(of: folder + "/x"), .missing)
    }

    /// `--method awq`: the same bytes at one and two threads; the folded norms are stored; the
    /// config names the method; GGUF output; AWQ + GPTQ into a folder and into GGUF.
    func testAWQCheckpoint() throws {
        let folder = try TestSupport.temporaryFolder()
        let quanta = try TestSupport.quantaExecutable()
        var files: [[UInt8]] = []
        for threads in ["1", "2"] {
            let out = folder + "/awq-\(threads)"
            let run = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, out, "--format", "gptq", "--method", "awq", "--bits", "4",
                                                   "--data", TestSupport.path("Calibration/calib-wiki.txt"), "--samples", "4", "--seq-len", "64",
                                                   "--threads", threads, "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(try JSONParser.parse(Array(run.stdout.utf8))["quantized"]?.intValue, 42)
            files.append(try TestSupport.read(out + "/model.safetensors"))
        }
        XCTAssertEqual(files[0], files[1])
        // --stats replays the calibration text and sampler the file names: the same bytes.
        let stats = folder + "/stats.h5"
        XCTAssertEqual(try TestSupport.run(quanta, ["calibrate", TestSupport.austenModel, "--data", TestSupport.path("Calibration/calib-wiki.txt"),
                                                    "--samples", "4", "--seq-len", "64", "--hessian", "diag", "--out", stats]).status, 0)
        let replayed = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, folder + "/awq-stats", "--format", "gptq", "--method", "awq",
                                                    "--bits", "4", "--stats", stats])
        XCTAssertEqual(replayed.status, 0, replayed.stderr)
        XCTAssertEqual(try TestSupport.read(folder + "/awq-stats/model.safetensors"), files[0])
        let config = try JSONParser.parse(FileSystem.read(folder + "/awq-1/config.json"))
        XCTAssertEqual(config["quantization_config"]?["meta"]?["method"]?.stringValue, "awq")
        XCTAssertEqual(config["quantization_config"]?["sym"], .bool(false), "AWQ keeps zero points by default")
        let quantized = try DecoderModel(path: folder + "/awq-1"), original = try DecoderModel(path: TestSupport.austenModel)
        XCTAssertNotEqual(quantized.weights.layers[2].attentionNorm, original.weights.layers[2].attentionNorm.map { HalfConversion.f16ToFloat(HalfConversion.floatToF16($0)) },
                          "the scales are folded into the stored norm")
        // GGUF: the folded norms stored as F32, the linears rescaled before llama.cpp's quantizer.
        let gguf = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, folder + "/awq.gguf", "Q4_K_M", "--method", "awq",
                                                "--data", TestSupport.path("Calibration/calib-wiki.txt"), "--samples", "4", "--seq-len", "64"])
        XCTAssertEqual(gguf.status, 0, gguf.stderr)
        let file = try GGUFFile(path: folder + "/awq.gguf")
        XCTAssertEqual(file["quanta.awq.gqa_value_pair"], .bool(true))
        var folded = 0
        for l in 0..<6 {
            for (name, norm) in [("attn_norm", original.weights.layers[l].attentionNorm), ("ffn_norm", original.weights.layers[l].ffnNorm)] {
                if try Quantization.dequantize(.f32, file.rawBytes("blk.\(l).\(name).weight"), count: 256) != norm { folded += 1 }
            }
        }
        XCTAssertGreaterThan(folded, 0, "some norm carries AWQ's scales")
        // AWQ + GPTQ: GPTQ on the rescaled Gram matrices.
        let combined = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, folder + "/awq-gptq", "--format", "gptq", "--method", "awq+gptq",
                                                    "--data", TestSupport.path("Calibration/calib-wiki.txt"), "--samples", "4", "--seq-len", "64"])
        XCTAssertEqual(combined.status, 0, combined.stderr)
        XCTAssertEqual(try JSONParser.parse(FileSystem.read(folder + "/awq-gptq/config.json"))["quantization_config"]?["meta"]?["method"]?.stringValue, "awq+gptq")
        let combinedGGUF = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, folder + "/awq-gptq.gguf", "Q4_K_M", "--method", "awq+gptq",
                                                        "--data", TestSupport.path("Calibration/calib-wiki.txt"), "--samples", "4", "--seq-len", "64"])
        XCTAssertEqual(combinedGGUF.status, 0, combinedGGUF.stderr)
        let combinedFile = try GGUFFile(path: folder + "/awq-gptq.gguf")
        XCTAssertEqual(combinedFile["quanta.gptq.damp_percent"], .float32(0.01))
        XCTAssertEqual(combinedFile.tensors.map(\.type), file.tensors.map(\.type))
        XCTAssertFalse(try combinedFile.rawBytes("blk.1.ffn_down.weight").elementsEqual(try file.rawBytes("blk.1.ffn_down.weight")),
                       "GPTQ's feedback changes the blocks AWQ alone rounds")
    }

    /// `--format awq`: AutoAWQ's GEMM folder; numpy unpacks it from the layout's description to
    /// the weights `quanta convert` reads back; transformers loads it.
    func testAWQFolderUnpacksWithNumpy() throws {
        let folder = try TestSupport.temporaryFolder()
        let quanta = try TestSupport.quantaExecutable()
        let awq = folder + "/awq", fp32 = folder + "/fp32"
        let run = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, awq, "--format", "awq", "--method", "rtn", "--asym", "--group-size", "64"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let config = try JSONParser.parse(FileSystem.read(awq + "/config.json"))["quantization_config"]
        XCTAssertEqual(config?["quant_method"]?.stringValue, "awq")
        XCTAssertEqual(config?["version"]?.stringValue, "gemm")
        XCTAssertEqual(config?["group_size"]?.intValue, 64)
        XCTAssertEqual(config?["zero_point"], .bool(true))
        XCTAssertEqual(try TestSupport.run(quanta, ["convert", awq, fp32]).status, 0)
        // numpy: eight 4-bit values per int32 along the output dimension, nibble p holding column
        // order[p] = 0, 2, 4, 6, 1, 3, 5, 7 of its eight; w = scale * (q - z) per group of input rows.
        let check = try TestSupport.oracle("""
            import sys, numpy as np
            from safetensors.numpy import load_file
            q = load_file(sys.argv[1] + "/model.safetensors"); f = load_file(sys.argv[2] + "/model.safetensors")
            def unpack(words):
                nibbles = (words.view(np.uint32)[:, :, None] >> (np.arange(8, dtype=np.uint32) * 4)) & 15   # [rows, words, p]
                out = np.empty_like(nibbles)
                out[:, :, [0, 2, 4, 6, 1, 3, 5, 7]] = nibbles
                return out.reshape(words.shape[0], -1)
            same = True; layers = 0
            for k in q:
                if not k.endswith(".qweight"): continue
                p = k[:-len(".qweight")]; layers += 1
                levels, zeros, scales = unpack(q[k]), unpack(q[p + ".qzeros"]), q[p + ".scales"].astype(np.float32)
                g = np.arange(levels.shape[0]) // 64
                w = (scales[g] * (levels.astype(np.float32) - zeros[g].astype(np.float32))).T
                same = same and np.array_equal(w, f[p + ".weight"])
            print(layers, same, q["model.layers.0.mlp.down_proj.qweight"].shape, q["model.layers.0.mlp.down_proj.qzeros"].shape)
            """, [awq, fp32]).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(check, "42 True (768, 32) (12, 32)")
        let bits = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, folder + "/x", "--format", "awq", "--method", "rtn", "--bits", "3"])
        XCTAssertEqual(bits.status, 64)
        XCTAssertTrue(bits.stderr.contains("--bits 3: the awq (GEMM) layout stores 4 bits"), bits.stderr)
        // transformers (through GPTQModel's AWQ linear) loads the folder as it is.
        try TransformersLoading.assertLoads(folder: awq, fp32: fp32, moduleClass: "TorchAtenAwqLinear")
    }

    /// `--format compressed-tensors`: numpy unpacks the pack-quantized folder from the layout's
    /// description to the weights `quanta convert` reads, for the symmetric (no zero points) and
    /// asymmetric schemes; transformers (with compressed-tensors) loads the symmetric folder and
    /// its logits follow Quanta's forward pass of the same folder.
    func testCompressedTensorsFolder() throws {
        let folder = try TestSupport.temporaryFolder()
        let quanta = try TestSupport.quantaExecutable()
        for (name, extra) in [("sym", ["--sym"]), ("asym", ["--asym", "--group-size", "64"])] {
            let out = folder + "/ct-" + name, fp32 = folder + "/fp32-" + name
            let run = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, out, "--format", "compressed-tensors", "--method", "rtn"] + extra)
            XCTAssertEqual(run.status, 0, run.stderr)
            let config = try JSONParser.parse(FileSystem.read(out + "/config.json"))["quantization_config"]
            XCTAssertEqual(config?["quant_method"]?.stringValue, "compressed-tensors")
            XCTAssertEqual(config?["format"]?.stringValue, "pack-quantized")
            XCTAssertEqual(config?["config_groups"]?["group_0"]?["weights"]?["symmetric"], .bool(name == "sym"))
            XCTAssertEqual(try TestSupport.run(quanta, ["convert", out, fp32]).status, 0)
            // numpy: each row's values one little-endian 4-bit stream of u = q + 8 along the input
            // dimension; zero points (asymmetric) the same along the output dimension, [out / 8, groups];
            // w = f16(scale * (u - zu)), zu = 8 without zero points.
            let check = try TestSupport.oracle("""
                import sys, numpy as np
                from safetensors.numpy import load_file
                q = load_file(sys.argv[1] + "/model.safetensors"); f = load_file(sys.argv[2] + "/model.safetensors")
                def stream(words):
                    return ((words.view(np.uint32)[:, :, None] >> (np.arange(8, dtype=np.uint32) * 4)) & 15).reshape(words.shape[0], -1)
                layers = 0; same = True; zeros = 0
                for k in q:
                    if not k.endswith(".weight_packed"): continue
                    p = k[:-len(".weight_packed")]; layers += 1
                    out, inp = q[p + ".weight_shape"]
                    u = stream(q[k]).astype(np.float32)
                    scale = q[p + ".weight_scale"]
                    g = np.arange(inp) // (inp // scale.shape[1])
                    if p + ".weight_zero_point" in q:
                        zeros += 1
                        zu = stream(q[p + ".weight_zero_point"].T).T.astype(np.float32)   # [out, groups]
                    else:
                        zu = np.full(scale.shape, 8, np.float32)
                    w = (scale.astype(np.float32)[:, g] * (u - zu[:, g])).astype(np.float16).astype(np.float32)
                    same = same and w.shape == (out, inp) and np.array_equal(w, f[p + ".weight"])
                print(layers, same, zeros, q["model.layers.0.mlp.down_proj.weight_packed"].shape, q["model.layers.0.mlp.down_proj.weight_scale"].dtype)
                """, [out, fp32]).trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(check, name == "sym" ? "42 True 0 (256, 96) float16" : "42 True 42 (256, 96) float16", name)
        }
        let python = try TestSupport.python()
        guard try TestSupport.run(python, ["-c", "import torch, transformers, compressed_tensors"]).status == 0 else {
            throw XCTSkip("torch, transformers and compressed-tensors absent from the oracle venv: run `bash Scripts/setup.sh --torch`")
        }
        let ours = try DecoderModel(path: folder + "/ct-sym")
        let ids: [Int32] = [0, 920, 310, 259, 1953, 465, 73, 1166, 552, 3051]
        let logits = try ours.logits([ids])
        try logits.withUnsafeBytes { try TestSupport.write(Array($0), to: folder + "/ours.f32") }
        let loaded = try TestSupport.oracle("""
            import sys, numpy as np, torch
            from transformers import AutoModelForCausalLM
            m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
            with torch.no_grad(): a = m(torch.tensor([[\(ids.map(String.init).joined(separator: ", "))]])).logits[0].float().numpy()
            b = np.fromfile(sys.argv[2], np.float32).reshape(a.shape)
            print("%.5f" % (np.abs(a - b).max() / np.abs(b).max()), int((a.argmax(-1) == b.argmax(-1)).sum()))
            """, [folder + "/ct-sym", folder + "/ours.f32"]).split(separator: "\n").last!.split(separator: " ")
        XCTAssertLessThan(Double(loaded[0])!, 1e-3, "largest logit difference relative to the largest logit")
        XCTAssertEqual(Int(loaded[1]), ids.count)
    }
}
