import QuantaCore
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
}
