import ArgumentParser
import QuantaCalibration
import QuantaCore
import QuantaIO
import QuantaModel
import QuantaReport

#if canImport(Glibc)
import Glibc
#endif

/// `quanta calibrate MODEL --data FILE --out stats.h5`: per linear input statistics, block by block.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Record what the inputs of every linear layer look like on calibration text (HDF5 statistics, llama.cpp imatrix).",
        discussion: """
            Samples run through the model one decoder block at a time, weights read from the memory-mapped model \
            and released after their block, so only one block's weights and the samples' hidden states are in memory. \
            Per linear input (q/k/v share one, gate/up share one; o; down; the output head): the token count, the sums \
            of x^2 and |x| and the largest |x| per channel, and with --hessian full the Gram matrix sum x x^T. \
            Sampling: --ctx C --chunks K is llama-imatrix's protocol (sequential chunks, BOS first); --samples N \
            --seq-len L --seed S draws random windows (GPTQ's datautils), or packed documents with --packed.
            """
    )

    enum BOS: String, ExpressibleByArgument, CaseIterable { case auto, yes, no }

    @Argument(help: "Model folder or GGUF file.") var model: String
    @Option(help: "Calibration text: plain UTF-8, or JSON lines with a \"text\" member.") var data: String
    @Option(help: "Statistics file to write (HDF5).") var out: String
    @Option(help: "Random samples (with --seq-len, --seed).") var samples: Int?
    @Option(name: .customLong("seq-len"), help: "Tokens per random sample.") var seqLen: Int = 512
    @Option(help: "Seed of the sampler.") var seed: UInt64 = 0
    @Flag(help: "Pack whole documents into the samples instead of drawing random windows.") var packed = false
    @Option(help: "llama-imatrix's protocol: tokens per chunk.") var ctx: Int?
    @Option(help: "llama-imatrix's protocol: at most this many chunks (default: all).") var chunks: Int?
    @Option(help: "full: Gram matrices (GPTQ); diag: sums of x^2 only; none: the same as diag.") var hessian: HessianMode = .full
    @Option(name: .customLong("export-imatrix"), help: "Also write llama.cpp's importance matrix (.gguf, or legacy .dat).") var exportImatrix: String?
    @Option(name: .customLong("add-bos"), help: "BOS at the start of each sample: auto follows the model's tokenizer.") var addBOS: BOS = .auto
    @Option(help: "fp32: the model's own fp32 activations. llamacpp: as llama.cpp computes them (f16 K/V, activations quantized for quantized weights; for f32 weights every operation in ggml's order, and --export-imatrix sums as llama-imatrix does), which reproduces llama-imatrix's file bit for bit.")
    var runtime: Runtime = .fp32
    @Option(help: "Threads for the statistics.") var threads: Int = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard (samples == nil) != (ctx == nil) else { throw ValidationError("give --samples N (random or --packed) or --ctx C (sequential chunks), one of them") }
        if let samples, samples < 1 { throw ValidationError("--samples must be at least 1") }
        if ctx == nil && seqLen < 2 { throw ValidationError("--seq-len must be at least 2") }
        if let ctx, ctx < 4 { throw ValidationError("--ctx must be at least 4") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be at least 1") }
        if chunks != nil && ctx == nil { throw ValidationError("--chunks goes with --ctx") }
        if packed && samples == nil { throw ValidationError("--packed goes with --samples") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard out != data && out != model else { throw ValidationError("--out must not overwrite an input") }
    }

    var sampler: CalibrationSampler {
        if let ctx { return .sequential(context: ctx, chunks: chunks) }
        return packed ? .packed(samples: samples!, length: seqLen, seed: seed) : .randomWindows(samples: samples!, length: seqLen, seed: seed)
    }

    func run() throws {
        try reportingFailures {
            for (option, path) in [("--out", out), ("--export-imatrix", exportImatrix)] {
                if let path { try FileSystem.checkOutput(path, option: option, inputs: [model, data]) }
            }
            let start = monotonicSeconds()
            let source = try openModelSource(model)
            let tokenizer = try source.tokenizer()
            let bos = addBOS == .auto ? tokenizer.addBOS : addBOS == .yes
            if bos && tokenizer.bosID == nil { throw QuantaError(.invalidArgument, model, "the tokenizer has no BOS token") }
            let text = try CalibrationData(path: data)
            let sequences = try sampler.sequences(text, tokenizer: tokenizer, bos: bos ? tokenizer.bosID : nil)
            let provenance = CalibrationProvenance(
                modelPath: model, modelType: source.config.modelType, modelSHA256: try weightsSHA256(source),
                dataPath: data, dataSHA256: text.sha256, sampler: sampler.name, seed: Int64(bitPattern: seed), samples: sequences.count,
                sequenceLength: sampler.length, addBOS: bos, hessian: hessian.rawValue)
            let runner = try BlockRunner(source: source, sequences: sequences)
            runner.hessian = hessian
            runner.model.runtime = runtime
            runner.imatrixSums = runtime == .llamacpp && exportImatrix != nil
            runner.threads = threads
            let writer = try StatisticsWriter(path: out, provenance: provenance, tokens: runner.rows)
            var sums: [ImatrixExport.Sums] = []
            let bar = ProgressBar(enabled: !json, verbose: false)
            try runner.run(onBlock: { block in
                writer.writeInBackground(block.statistics, config: source.config)
                sums += block.statistics.map(\.sums)
                return nil
            }, onHead: { head in
                writer.writeInBackground([head], config: source.config)
                sums.append(head.sums)
            }, progress: { done, total, rate in
                let eta = Double(total - done) * Double(runner.rows) / max(rate, 1e-9)
                bar.update(done, of: total, "blocks, \(fixed(rate, 0)) tokens/s, ETA \(fixed(eta, 0)) s")
            })
            bar.finish()
            try writer.finish()
            if let exportImatrix {
                let matrix = ImatrixExport.matrix(sums, config: source.config, dataset: data, chunks: sequences.count, chunkSize: sampler.length)
                if exportImatrix.lowercased().hasSuffix(".dat") { try matrix.writeLegacy(to: exportImatrix) } else { try matrix.writeGGUF(to: exportImatrix) }
            }
            let seconds = monotonicSeconds() - start
            if json {
                print(JSONValue.object([
                    ("model", .string(model)), ("data", .string(data)), ("out", .string(out)), ("sampler", .string(sampler.name)),
                    ("samples", .integer(Int64(sequences.count))), ("sequence_length", .integer(Int64(sampler.length))),
                    ("tokens", .integer(Int64(runner.rows))), ("add_bos", .bool(bos)), ("hessian", .string(hessian.rawValue)),
                    ("inputs", .integer(Int64(sums.count))), ("imatrix", exportImatrix.map { .string($0) } ?? .null),
                    ("model_sha256", .string(provenance.modelSHA256)), ("data_sha256", .string(text.sha256)),
                    ("seconds", .number((seconds * 1000).rounded() / 1000)),
                ]).serialized(indent: 2))
            } else {
                print("wrote \(out): \(sums.count) inputs over \(grouped(runner.rows)) tokens (\(sequences.count) x \(sampler.length), "
                      + "\(sampler.name), BOS \(bos ? "on" : "off"), hessian \(hessian.rawValue)) in \(fixed(seconds, 2)) s"
                      + (exportImatrix.map { "; imatrix \($0)" } ?? ""))
            }
        }
    }
}

extension HessianMode: ExpressibleByArgument {}
