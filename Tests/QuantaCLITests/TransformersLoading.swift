import QuantaModel
import TestSupport
import XCTest

/// transformers 5 loads GPTQ and AutoAWQ folders through GPTQModel's kernels (on CPU its torch
/// fallback); `Scripts/setup.sh --torch` installs gptqmodel 7.7.0 beside torch and transformers.
enum TransformersLoading {
    struct Result {
        /// Linear modules transformers replaced by GPTQModel's quantized linears.
        var quantizedModules: Int
        /// Of those, the ones whose dequantized weight (GPTQModel's own routine, scales widened to
        /// fp32) equals the weight `quanta convert` reads, bit for bit.
        var exactModules: Int
        /// The quantized linears' class name.
        var moduleClass: String
        /// Missing plus unexpected keys transformers reported.
        var strayKeys: Int
        /// Largest logit difference from Quanta's forward of the same folder, relative to the largest logit.
        var logitDifference: Double
        /// Positions whose argmax agrees with Quanta's.
        var sameArgmax: Int
    }

    static let ids: [Int32] = [0, 920, 310, 259, 1953, 465, 73, 1166, 552, 3051]

    /// Loads `folder` with `AutoModelForCausalLM.from_pretrained(..., dtype=float32)` on CPU, compares
    /// its modules' weights with `fp32` (the folder `quanta convert` wrote from it) and its logits
    /// with Quanta's forward pass of `folder`; throws XCTSkip without torch, transformers or gptqmodel.
    static func check(folder: String, fp32: String, file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        let python = try TestSupport.python()
        let present = "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in ('torch', 'transformers', 'gptqmodel', 'optimum', 'accelerate')) else 1)"
        guard try TestSupport.run(python, ["-c", present]).status == 0 else {
            throw XCTSkip("torch, transformers or gptqmodel absent from the oracle venv: run `bash Scripts/setup.sh --torch`")
        }
        let logits = try DecoderModel(path: folder).logits([ids])
        let ours = fp32 + ".logits.f32"
        try logits.withUnsafeBytes { try TestSupport.write(Array($0), to: ours) }
        let output = try TestSupport.oracle("""
            import sys, numpy as np, torch
            from safetensors.numpy import load_file
            from transformers import AutoModelForCausalLM
            from gptqmodel.nn_modules.qlinear import BaseQuantLinear
            reference = load_file(sys.argv[2] + "/model.safetensors")
            model, info = AutoModelForCausalLM.from_pretrained(sys.argv[1], device_map="cpu", dtype=torch.float32, output_loading_info=True)
            quantized = [(n, m) for n, m in model.named_modules() if isinstance(m, BaseQuantLinear)]
            exact = 0
            with torch.no_grad():
                for name, module in quantized:   # before the first forward, which repacks the buffers
                    scales = module.scales
                    module.scales = scales.float()
                    if hasattr(module, "awq_weight_dequantize"):
                        w = module.awq_weight_dequantize(device="cpu", dtype=torch.float32)
                    else:
                        w = module.dequantize_weight()
                    module.scales = scales
                    exact += int(np.array_equal(w.float().t().contiguous().numpy(), reference[name + ".weight"]))
                a = model(torch.tensor([[\(ids.map(String.init).joined(separator: ", "))]])).logits[0].float().numpy()
            b = np.fromfile(sys.argv[3], np.float32).reshape(a.shape)
            stray = len(info.get("missing_keys") or []) + len(info.get("unexpected_keys") or [])
            print("RESULT", len(quantized), exact, type(quantized[0][1]).__name__ if quantized else "-", stray,
                  "%.6f" % (np.abs(a - b).max() / np.abs(b).max()), int((a.argmax(-1) == b.argmax(-1)).sum()))
            """, [folder, fp32, ours], file: file, line: line)
        guard let last = output.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else {
            XCTFail("no RESULT line in: \(output)", file: file, line: line)
            throw XCTSkip("the loading script printed no result")
        }
        let fields = last.split(separator: " ").map(String.init)
        return Result(quantizedModules: Int(fields[1]) ?? -1, exactModules: Int(fields[2]) ?? -1, moduleClass: fields[3],
                      strayKeys: Int(fields[4]) ?? -1, logitDifference: Double(fields[5]) ?? .infinity, sameArgmax: Int(fields[6]) ?? -1)
    }

    /// `check`, asserting what every loadable folder gives: `modules` quantized linears of class
    /// `moduleClass`, all dequantized bit for bit as Quanta reads them, no stray keys, logits within
    /// 1e-3 (relative to the largest) of Quanta's forward with the same argmax everywhere.
    static func assertLoads(folder: String, fp32: String, moduleClass: String, modules: Int = 42,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let loaded = try check(folder: folder, fp32: fp32, file: file, line: line)
        XCTAssertEqual(loaded.quantizedModules, modules, file: file, line: line)
        XCTAssertEqual(loaded.exactModules, modules, "GPTQModel's dequantization equals Quanta's, bit for bit", file: file, line: line)
        XCTAssertEqual(loaded.moduleClass, moduleClass, file: file, line: line)
        XCTAssertEqual(loaded.strayKeys, 0, "no missing or unexpected keys", file: file, line: line)
        XCTAssertLessThan(loaded.logitDifference, 1e-3, file: file, line: line)
        XCTAssertEqual(loaded.sameArgmax, ids.count, file: file, line: line)
    }
}
