import QuantaCore
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// `quanta eval` against llama-perplexity's numbers (Tests/Fixtures/golden/README.md).
final class EvalCommandTests: XCTestCase {
    static let persuasion = TestSupport.path("Calibration/austen-persuasion-eval.txt")

    private func eval(_ arguments: [String]) throws -> JSONValue {
        let run = try TestSupport.run(try TestSupport.quantaExecutable(), ["eval"] + arguments + ["--json"])
        XCTAssertFalse(run.signalled, run.stderr)
        XCTAssertEqual(run.status, 0, run.stderr)
        return try JSONParser.parse(Array(run.stdout.utf8))
    }

    private func number(_ json: JSONValue, _ path: String...) -> Double {
        var value: JSONValue? = json
        for key in path { value = value?[key] }
        return value?.doubleValue ?? .nan
    }

    /// F32 perplexity 75.2329 (the golden F32 GGUF had add_bos true), Q4_K_M drift against it
    /// through saved logits and through a live baseline, matching the weight-only table.
    /// `quanta eval` streams the blocks of a quantized GGUF (dequantized per pass, freed after):
    /// the logits are the fully loaded model's, bit for bit, under both runtimes.
    func testStreamedBlocksGiveTheSameLogits() throws {
        let folder = try TestSupport.temporaryFolder()
        let quantized = folder + "/q4km.gguf"
        let q = try TestSupport.run(try TestSupport.quantaExecutable(), ["quantize", TestSupport.austenModel, quantized, "Q4_K_M"])
        XCTAssertEqual(q.status, 0, q.stderr)
        let whole = try DecoderModel(path: quantized), streamed = try DecoderModel(streamingBlocksOf: quantized)
        XCTAssertFalse(whole.weights.layers[1].q.isEmpty)
        XCTAssertTrue(streamed.weights.layers[1].q.isEmpty, "blocks after the first stay in the file")
        let sequences: [[Int32]] = [(1...40).map(Int32.init), (100...139).map(Int32.init)]
        for runtime in Runtime.allCases {
            whole.runtime = runtime
            streamed.runtime = runtime
            XCTAssertEqual(try whole.logits(sequences).map(\.bitPattern), try streamed.logits(sequences).map(\.bitPattern), "\(runtime)")
        }
        let f32 = try DecoderModel(streamingBlocksOf: TestSupport.austenModel)
        XCTAssertFalse(f32.weights.layers[1].q.isEmpty, "a folder loads whole")
    }

    func testBundledModelAndQ4_K_MDrift() throws {
        let folder = try TestSupport.temporaryFolder()
        let common = ["--text", EvalCommandTests.persuasion, "--ctx", "256", "--chunks", "40", "--add-bos", "yes", "--batch", "8"]
        let f32 = try eval([TestSupport.austenModel] + common + ["--save-logits", folder + "/f32.h5"])
        XCTAssertEqual(f32["scored_tokens"]?.intValue, 5080)
        XCTAssertEqual(number(f32, "perplexity"), 75.2329, accuracy: 75.2329 * 0.001)
        XCTAssertEqual(number(f32, "perplexity_error"), 2.91446, accuracy: 0.003)

        let quantized = folder + "/q4km.gguf"
        let q = try TestSupport.run(try TestSupport.quantaExecutable(), ["quantize", TestSupport.austenModel, quantized, "Q4_K_M"])
        XCTAssertEqual(q.status, 0, q.stderr)
        let stored = try eval([quantized] + common + ["--baseline-logits", folder + "/f32.h5"])
        let live = try eval([quantized] + common + ["--baseline", TestSupport.austenModel])
        // Weight-only Q4_K_M row: PPL(Q) 75.270507, mean KLD 0.001663, p99 0.008088, same top 96.220 %.
        for drift in [stored, live] {
            XCTAssertEqual(number(drift, "perplexity"), 75.270507, accuracy: 75.270507 * 0.001)
            XCTAssertEqual(number(drift, "drift", "mean_kld"), 0.001663, accuracy: 0.001663 * 0.02)
            XCTAssertEqual(number(drift, "drift", "p99_kld"), 0.008088, accuracy: 0.008088 * 0.02)
            XCTAssertEqual(number(drift, "drift", "same_top_percent"), 96.220, accuracy: 96.220 * 0.02)
            XCTAssertEqual(number(drift, "drift", "baseline_perplexity"), 75.2329, accuracy: 75.2329 * 0.001)
        }
        XCTAssertEqual(number(stored, "drift", "mean_kld"), number(live, "drift", "mean_kld"), accuracy: 1e-7,
                       "saved full log-probabilities give the live baseline's KLD")

        // What llama.cpp itself reports running the file (runtime table): PPL(Q) 75.254805,
        // mean KLD 0.001765, p99 0.008421, same top 96.083 %, RMS delta-p 0.841 %.
        let runtime = try eval([quantized] + common + ["--baseline", TestSupport.austenModel, "--runtime", "llamacpp"])
        XCTAssertEqual(runtime["runtime"], .string("llamacpp"))
        XCTAssertEqual(number(runtime, "perplexity"), 75.254805, accuracy: 75.254805 * 0.002)
        XCTAssertEqual(number(runtime, "drift", "mean_kld"), 0.001765, accuracy: 0.001765 * 0.05)
        XCTAssertEqual(number(runtime, "drift", "p99_kld"), 0.008421, accuracy: 0.008421 * 0.05)
        XCTAssertEqual(number(runtime, "drift", "same_top_percent"), 96.083, accuracy: 96.083 * 0.05)
        XCTAssertEqual(number(runtime, "drift", "rms_delta_p_percent"), 0.841, accuracy: 0.841 * 0.05)
        XCTAssertGreaterThan(number(runtime, "drift", "mean_kld"), number(live, "drift", "mean_kld"),
                             "activation quantization adds drift on top of the weights'")
    }

    /// SmolLM2's Q4_1 file evaluated directly equals its fp32 conversion, and both give
    /// llama-perplexity's 30.9846 at -c 512 --chunks 10 (add_bos false in this model).
    func testSmolLM2DirectAndConverted() throws {
        let gguf = try TestSupport.smolLM2()
        let folder = try TestSupport.temporaryFolder()
        let convert = try TestSupport.run(try TestSupport.quantaExecutable(), ["convert", gguf, folder + "/smollm2"])
        XCTAssertEqual(convert.status, 0, convert.stderr)
        let direct = try eval([gguf, "--text", EvalCommandTests.persuasion, "--ctx", "512", "--chunks", "10"])
        let converted = try eval([folder + "/smollm2", "--text", EvalCommandTests.persuasion, "--ctx", "512", "--chunks", "10"])
        XCTAssertEqual(direct["add_bos"], .bool(false))
        XCTAssertEqual(direct["scored_tokens"]?.intValue, 2550)
        let a = number(direct, "perplexity"), b = number(converted, "perplexity")
        XCTAssertEqual(a, 30.9846, accuracy: 30.9846 * 0.001)
        XCTAssertEqual(a, b, accuracy: a * 5e-5, "the same to 4 significant digits")

        // llama.cpp running the Q4_1 file (activations in Q8_1 blocks): 31.1489. Activation rounding
        // amplifies last-bit differences of the fp32 products, so the emulation moves with the
        // OpenBLAS kernel: 31.0677 (Haswell/Zen kernels), 31.0982 (Prescott), 31.1100 (SkylakeX).
        let runtime = try eval([gguf, "--text", EvalCommandTests.persuasion, "--ctx", "512", "--chunks", "10", "--runtime", "llamacpp"])
        XCTAssertEqual(number(runtime, "perplexity"), 31.1489, accuracy: 31.1489 * 0.003)
    }

    /// The low-bit presets quantized with the golden importance matrix (llama-imatrix on
    /// calib-wiki), weight-only drift at fp32 against the F32 model: the golden README's
    /// "Weight-only drift of the low-bit presets" table.
    func testLowBitPresetsDrift() throws {
        let folder = try TestSupport.temporaryFolder()
        let common = ["--text", EvalCommandTests.persuasion, "--ctx", "256", "--chunks", "40", "--add-bos", "yes", "--batch", "8"]
        _ = try eval([TestSupport.austenModel] + common + ["--save-logits", folder + "/f32.h5"])
        let expected: [(preset: String, ppl: Double, mean: Double, p99: Double, same: Double, median: Double, max: Double, rms: Double)] = [
            ("IQ3_M", 75.342139, 0.005877, 0.030379, 93.209, 0.003894, 0.148634, 1.401),
            ("IQ3_XXS", 75.775893, 0.009423, 0.046577, 91.752, 0.006554, 0.157278, 1.804),
            ("IQ2_M", 75.462306, 0.013475, 0.066799, 90.315, 0.009309, 0.235211, 2.131),
        ]
        for row in expected {
            let file = folder + "/\(row.preset).gguf"
            let q = try TestSupport.run(try TestSupport.quantaExecutable(), ["quantize", TestSupport.austenModel, file, row.preset,
                                                                            "--imatrix", TestSupport.golden("austen-imatrix.gguf")])
            XCTAssertEqual(q.status, 0, q.stderr)
            let drift = try eval([file] + common + ["--baseline-logits", folder + "/f32.h5"])
            // Same tensor bytes as llama-quantize (QuantizeCommandTests); what remains is the fp32
            // forward pass's summation order against ggml's: PPL to 6 significant digits, mean
            // and median KLD to the last printed digit, the tails (p99, max) to under 1 %.
            XCTAssertEqual(number(drift, "perplexity"), row.ppl, accuracy: row.ppl * 1e-5, row.preset)
            XCTAssertEqual(number(drift, "drift", "mean_kld"), row.mean, accuracy: 1.5e-6, row.preset)
            XCTAssertEqual(number(drift, "drift", "median_kld"), row.median, accuracy: 5e-6, row.preset)
            XCTAssertEqual(number(drift, "drift", "p99_kld"), row.p99, accuracy: row.p99 * 0.01, row.preset)
            XCTAssertEqual(number(drift, "drift", "max_kld"), row.max, accuracy: row.max * 0.005, row.preset)
            XCTAssertEqual(number(drift, "drift", "same_top_percent"), row.same, accuracy: 0.025, "\(row.preset): one token of 5080 is 0.0197 %")
            XCTAssertEqual(number(drift, "drift", "rms_delta_p_percent"), row.rms, accuracy: 0.0015, row.preset)
        }

        // llama.cpp running the IQ3_M file (activations in Q8_K blocks), without BOS as that file's
        // F32 GGUF tokenizer says: `llama-perplexity -m IQ3_M.gguf -f austen-persuasion-eval.txt -c 256
        // --chunks 40 -t 2 --kl-divergence-base BASE --kl-divergence` gave PPL(Q) 75.270070, mean KLD
        // 0.005974, p99 0.031692, RMS Δp 1.403 %, same top 93.150 % (base PPL 75.1269).
        let noBOS = ["--text", EvalCommandTests.persuasion, "--ctx", "256", "--chunks", "40", "--add-bos", "no", "--batch", "8"]
        let base = try eval([TestSupport.austenModel] + noBOS + ["--save-logits", folder + "/f32-nobos.h5"])
        XCTAssertEqual(number(base, "perplexity"), 75.1269, accuracy: 75.1269 * 1e-5)
        let runtime = try eval([folder + "/IQ3_M.gguf"] + noBOS + ["--baseline-logits", folder + "/f32-nobos.h5", "--runtime", "llamacpp"])
        XCTAssertEqual(number(runtime, "perplexity"), 75.270070, accuracy: 75.270070 * 0.002)
        XCTAssertEqual(number(runtime, "drift", "mean_kld"), 0.005974, accuracy: 0.005974 * 0.05)
        XCTAssertEqual(number(runtime, "drift", "p99_kld"), 0.031692, accuracy: 0.031692 * 0.05)
        XCTAssertEqual(number(runtime, "drift", "rms_delta_p_percent"), 1.403, accuracy: 1.403 * 0.05)
        XCTAssertEqual(number(runtime, "drift", "same_top_percent"), 93.150, accuracy: 93.150 * 0.05)
        XCTAssertGreaterThan(number(runtime, "drift", "mean_kld"), 0.005877 * 1.01, "activation rounding adds to the weights' 0.005877")
    }

    /// Every number eval prints is the same at 1, 2 and 3 threads (3 splits unevenly, and past
    /// this machine's cores), for both runtimes, with drift against saved baseline logits.
    func testNumbersDoNotDependOnThreads() throws {
        let folder = try TestSupport.temporaryFolder()
        let gguf = folder + "/q4km.gguf"
        let q = try TestSupport.run(try TestSupport.quantaExecutable(), ["quantize", TestSupport.austenModel, gguf, "Q4_K_M"])
        XCTAssertEqual(q.status, 0, q.stderr)
        let common = ["--text", EvalCommandTests.persuasion, "--ctx", "256", "--chunks", "8", "--batch", "4"]
        _ = try eval([TestSupport.austenModel] + common + ["--save-logits", folder + "/f32.h5"])
        func withoutTime(_ json: JSONValue) -> JSONValue {
            guard case let .object(members) = json else { return json }
            return .object(members.filter { $0.0 != "seconds" })
        }
        for runtime in ["fp32", "llamacpp"] {
            let runs = try [1, 2, 3].map { threads in
                withoutTime(try eval([gguf] + common + ["--baseline-logits", folder + "/f32.h5", "--runtime", runtime, "--threads", String(threads)]))
            }
            XCTAssertNotNil(runs[0]["drift"]?["mean_kld"]?.doubleValue, runtime)
            XCTAssertEqual(runs[1], runs[0], "\(runtime): 2 threads against 1")
            XCTAssertEqual(runs[2], runs[0], "\(runtime): 3 threads against 1")
        }
    }

    func testErrors() throws {
        let missing = try TestSupport.run(try TestSupport.quantaExecutable(), ["eval", TestSupport.austenModel, "--text", "/nonexistent.txt"])
        XCTAssertEqual(missing.status, 66)
        XCTAssertEqual(missing.stderr, "quanta: error: /nonexistent.txt: no such file\n")
        let short = try TestSupport.temporaryFolder() + "/short.txt"
        try TestSupport.write(Array("A few words only.".utf8), to: short)
        let tooShort = try TestSupport.run(try TestSupport.quantaExecutable(), ["eval", TestSupport.austenModel, "--text", short, "--ctx", "256"])
        XCTAssertEqual(tooShort.status, 64)
        XCTAssertTrue(tooShort.stderr.contains("tokens are fewer than one chunk of 256"), tooShort.stderr)
        let both = try TestSupport.run(try TestSupport.quantaExecutable(), ["eval", TestSupport.austenModel, "--text", short,
                                                                            "--baseline", "a", "--baseline-logits", "b"])
        XCTAssertEqual(both.status, 64)
    }
}
