import ArgumentParser
import QuantaCore
import QuantaEval
import QuantaIO
import QuantaReport
import QuantaModel

#if canImport(Glibc)
import Glibc
#endif

/// `quanta eval MODEL --text FILE`: perplexity and drift with llama-perplexity's protocol.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Perplexity of a model on a text, and its drift from a baseline, as llama-perplexity computes them.",
        discussion: """
            The text is tokenized once, cut into chunks of --ctx tokens, the first token of each chunk is \
            replaced by BOS (when BOS is used), and the predictions in the second half of each chunk are \
            scored. With --baseline (a model) or --baseline-logits (a file from --save-logits) it also \
            reports the KL divergence (mean, median, p99, max), the same-top-token rate, RMS Δp, Δppl and \
            the ppl ratio. MODEL and BASE are Hugging Face folders, quantized checkpoint folders or GGUF files. \
            With --runtime fp32 (the default) quantized tensors are dequantized and the forward pass runs in \
            fp32, so this measures weight error only; --runtime llamacpp also reproduces llama.cpp's CPU \
            runtime (activations quantized inside the dot products, K/V in f16).
            """
    )

    enum BOS: String, ExpressibleByArgument, CaseIterable { case auto, yes, no }

    @Argument(help: "Model folder or GGUF file.") var model: String
    @Option(help: "UTF-8 text file to score.") var text: String
    @Option(help: "Tokens per chunk.") var ctx: Int = 512
    @Option(help: "Evaluate at most this many chunks (default: all).") var chunks: Int?
    @Option(help: "Chunks per forward batch (default: as many as fit 2048 tokens, as llama-perplexity's n_batch).") var batch: Int?
    @Option(help: "Baseline model for drift statistics.") var baseline: String?
    @Option(name: .customLong("baseline-logits"), help: "Baseline log-probabilities saved with --save-logits.") var baselineLogits: String?
    @Option(name: .customLong("save-logits"), help: "Save this model's log-probabilities (HDF5) for later --baseline-logits runs.") var saveLogits: String?
    @Option(name: .customLong("top-k"), help: "With --save-logits: keep only the top K log-probabilities per position, the rest's mass and the target's log-probability (0 = all). Runs against such a file have exact PPL, Δp and same-top; their KLD is a lower bound, short by the divergence among the tokens outside the top K, weighted by their baseline mass.") var topK: Int = 0
    @Option(name: .customLong("add-bos"), help: "BOS at the start of each chunk: auto follows the model's tokenizer (add_bos_token).") var addBOS: BOS = .auto
    @Option(help: "fp32: weight error only. llamacpp: also quantize activations inside the dot products and keep K/V in f16, as llama.cpp's CPU backend does when it runs the file.")
    var runtime: Runtime = .fp32
    @Option(help: "Worker threads (the numbers do not depend on it).") var threads: Int = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard ctx >= 4 else { throw ValidationError("--ctx must be at least 4") }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard baseline == nil || baselineLogits == nil else { throw ValidationError("give --baseline or --baseline-logits, not both") }
        guard topK >= 0 else { throw ValidationError("--top-k must be 0 or more") }
        guard topK == 0 || saveLogits != nil else { throw ValidationError("--top-k applies to --save-logits; give --save-logits FILE or drop --top-k") }
    }

    func run() throws {
        DecoderModel.threads = threads
        try reportingFailures {
            if let saveLogits {
                try FileSystem.checkOutput(saveLogits, option: "--save-logits", inputs: [model, text] + [baseline, baselineLogits].compactMap { $0 })
            }
            let bytes = try FileSystem.read(text)
            guard let content = String(validating: bytes, as: UTF8.self) else {
                throw QuantaError.malformed(text, "is not valid UTF-8")
            }
            let subject = try DecoderModel(streamingBlocksOf: model)
            subject.runtime = runtime
            let trained = subject.config.maxPositionEmbeddings
            if trained > 0 && ctx > trained {
                printError("quanta: warning: --ctx \(ctx) exceeds the \(trained) positions \(model) was trained on (max_position_embeddings); its numbers there mean little")
            }
            let bos = addBOS == .auto ? subject.tokenizer.addBOS : addBOS == .yes
            let settings = PerplexityProtocol(context: ctx, chunks: chunks, addBOS: bos, batch: batch ?? max(1, 2048 / ctx))
            var reference: Baseline?
            if let baseline {
                let base = try DecoderModel(streamingBlocksOf: baseline)
                base.runtime = runtime
                reference = .model(base)
            }
            if let baselineLogits { reference = .logits(try BaselineLogits(path: baselineLogits)) }
            let bar = ProgressBar(enabled: !json, verbose: false)
            let result = try Evaluator(model: subject, protocol: settings)
                .run(text: content, source: text, baseline: reference, saveLogits: saveLogits.map { LogitsSink(path: $0, topK: topK) }) { done, total in
                    bar.update(done, of: total, "chunks")
                }
            bar.finish()
            json ? print(report(result, bos: bos).serialized(indent: 2)) : print(lines(result, bos: bos))
        }
    }

    func report(_ r: EvaluationResult, bos: Bool) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("model", .string(model)), ("text", .string(text)), ("ctx", .integer(Int64(ctx))), ("chunks", .integer(Int64(r.chunks))),
            ("chunks_requested", chunks.map { .integer(Int64($0)) } ?? .null),
            ("add_bos", .bool(bos)), ("runtime", .string(runtime.rawValue)), ("text_tokens", .integer(Int64(r.textTokens))), ("scored_tokens", .integer(Int64(r.scoredTokens))),
            ("perplexity", .number(r.perplexity)), ("perplexity_error", .number(r.perplexityError)), ("mean_nll", .number(r.meanNLL)),
            ("seconds", .number((r.seconds * 1000).rounded() / 1000)),
        ]
        if let d = r.drift {
            members.append(("drift", .object([
                ("baseline", .string(baseline ?? baselineLogits ?? "")), ("baseline_perplexity", .number(d.baselinePerplexity)),
                ("mean_kld", .number(d.meanKLD)), ("mean_kld_error", .number(d.meanKLDError)), ("median_kld", .number(d.medianKLD)),
                ("p99_kld", .number(d.p99KLD)), ("max_kld", .number(d.maxKLD)), ("same_top_percent", .number(d.sameTopPercent)),
                ("rms_delta_p_percent", .number(d.rmsDeltaPPercent)), ("delta_ppl", .number(d.deltaPerplexity)),
                ("ppl_ratio", .number(d.perplexityRatio)), ("ln_ppl_correlation", .number(d.correlation)),
            ])))
        }
        return .object(members)
    }

    func lines(_ r: EvaluationResult, bos: Bool) -> String {
        let short = chunks.map { $0 > r.chunks ? " (--chunks \($0) asked for more than the text holds)" : "" } ?? ""
        var out = ["\(model) on \(text) (\(runtime.rawValue) runtime): \(r.textTokens) tokens, \(r.chunks) chunks of \(ctx)\(short) (BOS \(bos ? "on" : "off")), \(r.scoredTokens) scored, \(fixed(r.seconds, 2)) s",
                   "PPL = \(fixed(r.perplexity, 4)) +/- \(fixed(r.perplexityError, 5))"]
        if let d = r.drift {
            out += ["baseline PPL = \(fixed(d.baselinePerplexity, 4)), delta = \(fixed(d.deltaPerplexity, 4)), ratio = \(fixed(d.perplexityRatio, 6))",
                    "mean KLD = \(fixed(d.meanKLD, 6)) +/- \(fixed(d.meanKLDError, 6)), median \(fixed(d.medianKLD, 6)), p99 \(fixed(d.p99KLD, 6)), max \(fixed(d.maxKLD, 6))",
                    "same top token = \(fixed(d.sameTopPercent, 3)) %, RMS delta-p = \(fixed(d.rmsDeltaPPercent, 3)) %"]
        }
        return out.joined(separator: "\n")
    }
}

extension Runtime: ExpressibleByArgument {}
