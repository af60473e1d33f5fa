@testable import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// `quantize --format gptq`: the GPTQModel v1 layout, unpacked by numpy from its public description
/// and loaded by transformers.
final class GPTQCheckpointTests: XCTestCase {
    func testCheckpointUnpacksWithNumpy() throws {
        let folder = try TestSupport.temporaryFolder()
        let stats = folder + "/stats.h5", output = folder + "/gptq"
        let quanta = try TestSupport.quantaExecutable()
        XCTAssertEqual(try TestSupport.run(quanta, ["calibrate", TestSupport.austenModel, "--data", TestSupport.path("Calibration/calib-wiki.txt"),
                                                    "--samples", "8", "--seq-len", "64", "--out", stats]).status, 0)
        let run = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, output, "--format", "gptq", "--method", "gptq", "--stats", stats,
                                               "--bits", "4", "--group-size", "64", "--asym", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try JSONParser.parse(Array(run.stdout.utf8))["quantized"]?.intValue, 42)
        let config = try JSONParser.parse(FileSystem.read(output + "/quantize_config.json"))
        XCTAssertEqual(config["bits"]?.intValue, 4)
        XCTAssertEqual(config["group_size"]?.intValue, 64)
        XCTAssertEqual(config["sym"], .bool(false))
        XCTAssertEqual(config["desc_act"], .bool(false))
        XCTAssertEqual(config["checkpoint_format"], .string("gptq"))
        XCTAssertEqual(config["quant_method"], .string("gptq"))
        XCTAssertEqual(try JSONParser.parse(FileSystem.read(output + "/config.json"))["quantization_config"]?["bits"]?.intValue, 4)
        XCTAssertEqual(FileSystem.kind(of: output + "/tokenizer.json"), .file)
        // The same solve in process, dequantized with f16 scales as the layout stores them.
        let model = try ModelFolder(path: TestSupport.austenModel)
        let file = try StatisticsFile(path: stats)
        let input = try XCTUnwrap(file.input(feeding: "blk.3.ffn_down.weight"))
        var options = GPTQCheckpoint.Options()
        options.grid.groupSize = 64
        options.grid.symmetric = false
        let weight = try model.weights.floatTensor("model.layers.3.mlp.down_proj.weight")
        let factorization = try GPTQ.factorize(gram: try XCTUnwrap(file.gram(input)), columns: 768, options: options.solver)
        let layer = try GPTQCheckpoint.solve(weight.storage, rows: 256, factorization: factorization, options: options, threads: 1)
        var ours = [Float](repeating: 0, count: 256 * 768)
        for r in 0..<256 {
            for c in 0..<768 {
                let g = Int(layer.groupIndex[c])
                let scale = HalfConversion.f16ToFloat(HalfConversion.floatToF16(layer.scales[g * 256 + r]))
                ours[r * 768 + c] = scale * (Float(layer.levels[r * 768 + c]) - layer.zeros[g * 256 + r])
            }
        }
        try ours.withUnsafeBytes { try TestSupport.write(Array($0), to: folder + "/ours.f32") }
        // Quanta reads the folder back (eval, convert) to the same weights, bit for bit.
        let loaded = try DecoderModel(path: output)
        XCTAssertEqual(loaded.weights.layers[3].down, ours)
        XCTAssertEqual(loaded.config.modelType, "llama")
        // numpy, from the layout's description: 8 levels per int32 along the input dimension, low bits first;
        // zero points minus one packed along the output dimension; w = scale * (q - (z + 1)).
        let check = try TestSupport.oracle("""
            import sys, json, numpy as np
            from safetensors.numpy import load_file
            q = load_file(sys.argv[1] + "/model.safetensors"); ref = load_file(sys.argv[2] + "/model.safetensors")
            p = "model.layers.3.mlp.down_proj."
            qw, qz, sc, gi = q[p + "qweight"], q[p + "qzeros"], q[p + "scales"], q[p + "g_idx"]
            shifts = np.arange(8, dtype=np.uint32) * 4
            levels = ((qw.view(np.uint32)[:, None, :] >> shifts[None, :, None]) & 15).reshape(-1, qw.shape[1])   # [in, out]
            zeros = ((qz.view(np.uint32)[:, :, None] >> shifts[None, None, :]) & 15).reshape(qz.shape[0], -1) + 1  # [groups, out]
            w = (sc.astype(np.float32)[gi] * (levels.astype(np.float32) - zeros[gi].astype(np.float32))).T     # [out, in]
            orig = ref[p + "weight"]
            rel = np.sqrt(((w - orig) ** 2).mean() / (orig ** 2).mean())
            same = np.array_equal(w, np.fromfile(sys.argv[3], np.float32).reshape(256, 768))
            print(list(qw.shape), qw.dtype, list(qz.shape), sc.dtype, list(gi.shape), int(levels.max()), int(gi.max()),
                  q["model.embed_tokens.weight"].dtype, "%.4f" % rel, same)
            """, [output, TestSupport.austenModel, folder + "/ours.f32"]).split(separator: " ").map(String.init)
        XCTAssertEqual(Array(check[0..<8]), ["[96,", "256]", "int32", "[12,", "32]", "float16", "[768]", "15"])
        XCTAssertEqual(check[8], "11", "768 input columns in groups of 64")
        XCTAssertEqual(check[9], "float16")
        XCTAssertEqual(check[11].trimmingCharacters(in: .whitespacesAndNewlines), "True", "numpy's unpacking equals the solver's weights")
        // 512 calibration tokens for 768 inputs: GPTQ trades weight error for output error along unseen directions.
        let rel = Double(check[10])!
        XCTAssertLessThan(rel, 0.3)
        XCTAssertGreaterThan(rel, 0.01)

        // 3 bits with act order, one thread and two: the same bytes.
        var files: [[UInt8]] = []
        for threads in ["1", "2"] {
            let out = folder + "/w3-\(threads)"
            let w3 = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, out, "--format", "gptq", "--method", "gptq", "--stats", stats,
                                                  "--bits", "3", "--act-order", "--threads", threads])
            XCTAssertEqual(w3.status, 0, w3.stderr)
            XCTAssertTrue(w3.stderr.contains("quanta: note: vLLM loads GPTQ folders only with symmetric 4- or 8-bit grids and no act-order groups, so it will refuse this one (3-bit grids, act-order with groups)"), w3.stderr)
            files.append(try TestSupport.read(out + "/model.safetensors"))
        }
        XCTAssertEqual(files[0], files[1])
        XCTAssertEqual(try DecoderModel(path: folder + "/w3-1").config.layerCount, 6)

        // A statistics file that is not one, and an output folder that exists.
        try TestSupport.write(try TestSupport.read(TestSupport.golden("austen-imatrix.gguf")), to: folder + "/fake.h5")
        let fake = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, folder + "/x", "--format", "gptq", "--method", "gptq", "--stats", folder + "/fake.h5"])
        XCTAssertEqual(fake.status, 65)
        XCTAssertEqual(fake.stderr, "quanta: error: \(folder)/fake.h5: not an HDF5 file\n")
        let taken = try TestSupport.run(quanta, ["quantize", TestSupport.austenModel, output, "--format", "gptq", "--method", "gptq", "--stats", stats])
        XCTAssertEqual(taken.status, 64)
        XCTAssertEqual(taken.stderr, "quanta: error: OUT \(output): already exists; choose a new output folder\n")

        // transformers (through optimum and GPTQModel's torch linear) loads the folder as it is.
        XCTAssertEqual(try TestSupport.run(quanta, ["convert", output, folder + "/fp32"]).status, 0)
        try TransformersLoading.assertLoads(folder: output, fp32: folder + "/fp32", moduleClass: "TorchAtenLinear")
    }
}
