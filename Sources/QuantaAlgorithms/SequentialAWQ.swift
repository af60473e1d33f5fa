import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel

/// AWQ over a whole model: the calibration samples run block by block (`BlockRunner`); each
/// block's activations are captured with its fp32 weights, the four smoothing pairs are searched
/// and folded, the clipping limits searched and applied, and `onBlock` receives the block's new
/// fp32 weights (GGUF layout) to round. As in the reference, the next block sees the outputs of
/// the original (unrounded) block.
public enum SequentialAWQ {
    /// Captures the inputs of q (attention norm output), o, gate (ffn norm output) and down for
    /// every row of a pass made in batches, in order.
    final class Capture: ForwardObserver {
        let rows: Int
        var buffers: [LinearRole: [Float]] = [:]
        var offsets: [LinearRole: Int] = [:]

        init(rows: Int, config: ModelConfig) {
            self.rows = rows
            for (role, width) in [(LinearRole.q, config.hiddenSize), (.o, config.qDim), (.gate, config.hiddenSize), (.down, config.intermediateSize)] {
                buffers[role] = [Float](repeating: 0, count: rows * width)
                offsets[role] = 0
            }
        }

        func linearInput(layer: Int, role: LinearRole, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
            guard let offset = offsets[role] else { return }
            buffers[role]!.withUnsafeMutableBufferPointer { ($0.baseAddress! + offset).update(from: x.baseAddress!, count: rows * columns) }
            offsets[role] = offset + rows * columns
        }

        func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {}
    }

    /// Returns the head's input sums (the head is not rescaled).
    @discardableResult
    public static func run(source: ModelSource, sequences: [[Int32]], options: AWQOptions, threads: Int,
                           onBlock: (Int, DecoderWeights.Layer, AWQBlockReport) throws -> Void,
                           progress: ((Int, Int) -> Void)? = nil) throws -> ImatrixExport.Sums? {
        let config = source.config
        try config.checkUnfused("awq")
        let runner = try BlockRunner(source: source, sequences: sequences)
        runner.keepInputs = true
        runner.hessian = options.keepGram ? .full : .none  // the sums of x^2 are always taken (importance for GGUF)
        runner.threads = threads
        let model = runner.model, length = runner.length, rows = runner.rows
        let perBatch = max(1, runner.batchRows / length)
        let d = config.hiddenSize, qDim = config.qDim, kvDim = config.kvDim, f = config.intermediateSize
        let group = config.headCount / config.kvHeadCount, headDim = config.headDim

        /// Runs `body(first row, sequence count)` over the batches of the first `count` sequences.
        func batches(_ count: Int = sequences.count, _ body: (Int, Int) -> Void) {
            for first in stride(from: 0, to: count, by: perBatch) { body(first * length, min(perBatch, count - first)) }
        }
        let searched = min(sequences.count, max(1, options.searchSequences)), searchRows = searched * length
        /// The residual stream after a partial pass from `start` (`[searchRows, d]`) with `weights`.
        func pass(_ start: [Float], _ weights: DecoderWeights.Layer, layer l: Int, entry: BlockEntry, stop: LinearRole?) -> [Float] {
            var x = Array(start[0..<(searchRows * d)])
            x.withUnsafeMutableBufferPointer { xb in
                batches(searched) { row, count in
                    model.block(weights, index: l, xb.baseAddress! + row * d, sequences: count, length: length, entry: entry, stop: stop)
                }
            }
            return x
        }

        var head: ImatrixExport.Sums?
        try runner.run(onBlock: { block in
            let l = block.layer
            var w = block.weights
            let X = Array(block.inputs!)
            // The block's activations with its own weights.
            let capture = Capture(rows: rows, config: config)
            var residual = X
            residual.withUnsafeMutableBufferPointer { xb in
                batches { row, count in
                    model.block(w, index: l, xb.baseAddress! + row * d, sequences: count, length: length, observer: capture)
                }
            }
            let H1 = capture.buffers[.q]!, A = capture.buffers[.o]!, H2 = capture.buffers[.gate]!, G = capture.buffers[.down]!
            let afterAttention = pass(X, w, layer: l, entry: .attention, stop: .gate)
            let grid = options.grid
            var report = AWQBlockReport()
            // The runner's statistics were taken on these same activations: mean |x| and mean x^2 per channel.
            let inputs = Dictionary(uniqueKeysWithValues: block.statistics.map { ($0.input, $0) })
            func meanAbs(_ input: LinearInput) -> [Float] { AWQ.mean(inputs[input]!.sumAbs, tokens: inputs[input]!.tokens) }
            let squares: [LinearRole: [Float]] = options.quantizer == nil ? [:] : Dictionary(uniqueKeysWithValues: [
                (LinearRole.q, LinearInput.attentionQKV), (.o, .attentionOutput), (.gate, .ffnGateUp), (.down, .ffnDown),
            ].map { ($0.0, AWQ.mean(inputs[$0.1]!.sumSquares, tokens: inputs[$0.1]!.tokens)) })
            /// Q(W s) / s: the weight a candidate's rounding leaves, as the unscaled input sees it.
            func rounded(_ role: LinearRole, _ weight: [Float], rows n: Int, columns: Int, _ s: [Float]) throws -> [Float] {
                let scaled = AWQ.scaleColumns(weight, columns: columns, s)
                let q: [Float]
                if let quantizer = options.quantizer {
                    let input: LinearRole = [.q, .k, .v].contains(role) ? .q : role == .up ? .gate : role
                    let importance = squares[input]!.enumerated().map { $1 / (s[$0] * s[$0]) }
                    q = try quantizer(role, l, scaled, n, columns, importance)
                } else {
                    q = AWQ.fakeQuantize(scaled, rows: n, columns: columns, grid: grid)
                }
                return AWQ.scaleColumns(q, columns: columns, s, divide: true)
            }

            // input_layernorm -> q/k/v, judged on the attention output.
            let sA: [Float] = try {
                let activation = meanAbs(.attentionQKV)
                let magnitude = options.duoScaling ? AWQ.weightMagnitude([w.q, w.k, w.v], columns: d, groupSize: grid.groupSize) : nil
                let found = try AWQ.search(activation: activation, weight: magnitude, options: options) { s in
                    var trial = w
                    trial.q = try rounded(.q, w.q, rows: qDim, columns: d, s)
                    trial.k = try rounded(.k, w.k, rows: kvDim, columns: d, s)
                    trial.v = try rounded(.v, w.v, rows: kvDim, columns: d, s)
                    return AWQ.meanSquare(pass(X, trial, layer: l, entry: .attention, stop: .gate), afterAttention)
                }
                report.alpha[.attentionNorm] = found.alpha
                report.loss[.attentionNorm] = (found.best, found.plain)
                return found.scales
            }()

            // v -> o, judged on o's output; under GQA one scale per v channel for every query head reading it.
            var sB: [Float]?
            if options.groupedValuePair || qDim == kvDim {
                let perQuery = meanAbs(.attentionOutput)
                func perValue(_ q: [Float]) -> [Float] {
                    (0..<kvDim).map { c in
                        let (kv, i) = (c / headDim, c % headDim)
                        return (0..<group).reduce(0) { $0 + q[(kv * group + $1) * headDim + i] } / Float(group)
                    }
                }
                func expand(_ s: [Float]) -> [Float] { (0..<qDim).map { s[($0 / headDim / group) * headDim + $0 % headDim] } }
                let magnitude = options.duoScaling ? perValue(AWQ.weightMagnitude([w.o], columns: qDim, groupSize: grid.groupSize)) : nil
                let reference = A.withUnsafeBufferPointer { AWQ.product($0.baseAddress!, rows: searchRows, w.o, n: d, k: qDim) }
                let found = try AWQ.search(activation: perValue(perQuery), weight: magnitude, options: options) { s in
                    let e = expand(s)
                    let o = try rounded(.o, w.o, rows: d, columns: qDim, e)
                    return AWQ.meanSquare(A.withUnsafeBufferPointer { AWQ.product($0.baseAddress!, rows: searchRows, o, n: d, k: qDim) }, reference)
                }
                report.alpha[.valueOutput] = found.alpha
                report.loss[.valueOutput] = (found.best, found.plain)
                sB = found.scales
            }

            // post_attention_layernorm -> gate/up, judged on the feed-forward output.
            let afterBlock = Array(residual[0..<(searchRows * d)])
            let sC: [Float] = try {
                let activation = meanAbs(.ffnGateUp)
                let magnitude = options.duoScaling ? AWQ.weightMagnitude([w.gate, w.up], columns: d, groupSize: grid.groupSize) : nil
                let found = try AWQ.search(activation: activation, weight: magnitude, options: options) { s in
                    var trial = w
                    trial.gate = try rounded(.gate, w.gate, rows: f, columns: d, s)
                    trial.up = try rounded(.up, w.up, rows: f, columns: d, s)
                    return AWQ.meanSquare(pass(afterAttention, trial, layer: l, entry: .feedForward, stop: nil), afterBlock)
                }
                report.alpha[.ffnNorm] = found.alpha
                report.loss[.ffnNorm] = (found.best, found.plain)
                return found.scales
            }()

            // up -> down, judged on down's output.
            let sD: [Float] = try {
                let activation = meanAbs(.ffnDown)
                let magnitude = options.duoScaling ? AWQ.weightMagnitude([w.down], columns: f, groupSize: grid.groupSize) : nil
                let reference = G.withUnsafeBufferPointer { AWQ.product($0.baseAddress!, rows: searchRows, w.down, n: d, k: f) }
                let found = try AWQ.search(activation: activation, weight: magnitude, options: options) { s in
                    let down = try rounded(.down, w.down, rows: d, columns: f, s)
                    return AWQ.meanSquare(G.withUnsafeBufferPointer { AWQ.product($0.baseAddress!, rows: searchRows, down, n: d, k: f) }, reference)
                }
                report.alpha[.upDown] = found.alpha
                report.loss[.upDown] = (found.best, found.plain)
                return found.scales
            }()

            // Fold: the preceding operation's outputs take 1/s, the following inputs s (exact in real arithmetic).
            for i in 0..<d { w.attentionNorm[i] /= sA[i] }
            w.q = AWQ.scaleColumns(w.q, columns: d, sA)
            w.k = AWQ.scaleColumns(w.k, columns: d, sA)
            w.v = AWQ.scaleColumns(w.v, columns: d, sA)
            var oInputScale = [Float](repeating: 1, count: qDim)
            if let sB {
                w.v = AWQ.divideRows(w.v, columns: d, sB)
                oInputScale = (0..<qDim).map { sB[($0 / headDim / group) * headDim + $0 % headDim] }
                w.o = AWQ.scaleColumns(w.o, columns: qDim, oInputScale)
            }
            for i in 0..<d { w.ffnNorm[i] /= sC[i] }
            w.gate = AWQ.scaleColumns(w.gate, columns: d, sC)
            w.up = AWQ.scaleColumns(w.up, columns: d, sC)
            w.up = AWQ.divideRows(w.up, columns: d, sD)
            w.down = AWQ.scaleColumns(w.down, columns: f, sD)

            // Clipping on a token sample of the scaled inputs (not q and k: their errors meet in the softmax).
            let tokens = min(options.clipTokens, rows), stride = max(1, rows / tokens)
            func sample(_ x: [Float], columns: Int, _ s: [Float]) -> [Float] {
                var out = [Float](repeating: 0, count: tokens * columns)
                for t in 0..<tokens { for c in 0..<columns { out[t * columns + c] = x[t * stride * columns + c] / s[c] } }
                return out
            }
            func clipped(_ weight: [Float], rows n: Int, columns: Int, _ x: [Float]) -> [Float] {
                let limits = AWQ.clip(weight, rows: n, columns: columns, samples: x, tokens: tokens, options: options)
                return AWQ.applyClip(weight, rows: n, columns: columns, limits: limits, groupSize: grid.groupSize)
            }
            if options.clip {
                let x1 = sample(H1, columns: d, sA), x2 = sample(H2, columns: d, sC)
                w.v = clipped(w.v, rows: kvDim, columns: d, x1)
                w.o = clipped(w.o, rows: d, columns: qDim, sample(A, columns: qDim, oInputScale))
                w.gate = clipped(w.gate, rows: f, columns: d, x2)
                w.up = clipped(w.up, rows: f, columns: d, x2)
                w.down = clipped(w.down, rows: d, columns: f, sample(G, columns: f, sD))
            }
            report.inputScales = [.attentionQKV: sA, .attentionOutput: oInputScale, .ffnGateUp: sC, .ffnDown: sD]
            report.statistics = block.statistics
            try onBlock(l, w, report)
            progress?(l + 1, config.layerCount)
            return nil
        }, onHead: { head = $0.sums })
        return head
    }
}

extension GPTQCheckpoint {
    /// AWQ (scales folded, clipping applied) then round-to-nearest on the grid, into a folder
    /// layout; the folded norms are stored (f16) in place of the original ones.
    /// With `gptq`, each folded weight is solved by GPTQ on the rescaled Gram matrix of its
    /// input instead of rounded (AWQ + GPTQ, as llm-compressor chains them).
    public static func writeAWQ(source: HuggingFaceSource, sequences: [[Int32]], calibration: String, options: Options, awq: AWQOptions,
                                gptq: Bool = false, to folder: String, threads: Int,
                                progress: ((Int, Int) -> Void)? = nil) throws -> (Summary, [AWQBlockReport]) {
        let start = monotonicSeconds()
        var awq = awq
        awq.keepGram = gptq
        let cache = FactorizationCache()
        var maxDamp = gptq ? options.solver.damp : 0
        try options.layout.check(options.grid, actOrder: false)
        try FolderSink.checkFree(folder)
        let config = source.config
        let specs = config.architecture.tensors(config)
        var solved: [String: [SafetensorsWriter.Entry]] = [:], replaced: [String: [Float]] = [:]
        var reports: [AWQBlockReport] = []
        try SequentialAWQ.run(source: source, sequences: sequences, options: awq, threads: threads, onBlock: { l, weights, report in
            reports.append(report)
            for spec in specs where spec.layer == l {
                switch spec.role {
                case .attentionNorm: replaced[spec.hfName] = weights.attentionNorm.map { $0 - spec.ggufOffset }
                case .ffnNorm: replaced[spec.hfName] = weights.ffnNorm.map { $0 - spec.ggufOffset }
                default:
                    guard let role = spec.role.linear, quantizes(spec) else { continue }
                    let (rows, columns) = (spec.shape[0], spec.shape[1])
                    let values = try spec.ggufPermutationHeads.map {
                        try RopeLayout.interleave(weights[linear: role], rows: rows, columns: columns, heads: $0, inverse: true)
                    } ?? weights[linear: role]
                    let layer: SolvedLinear
                    if gptq, let input = LinearInput.feeding(role),
                       let (factorization, _) = try report.rescaledFactorization(input, layer: l, options: options.solver, cache: cache) {
                        maxDamp = max(maxDamp, factorization.damp)
                        layer = try solve(values, rows: rows, factorization: factorization, options: options, threads: threads)
                    } else {
                        layer = try round(values, rows: rows, columns: columns, options: options)
                    }
                    solved[spec.hfName] = try options.layout.entries(prefix: prefix(spec), layer, bits: options.grid.bits)
                }
            }
        }, progress: progress)
        let settings = CheckpointSettings(grid: options.grid, solver: options.solver, method: gptq ? "awq+gptq" : "awq", trueSequential: false,
                                          maxDamp: maxDamp, calibration: calibration)
        try assemble(model: source.model, solved: solved, replaced: replaced, settings: settings, layout: options.layout, to: folder)
        return (Summary(quantized: solved.count, seconds: monotonicSeconds() - start, maxDamp: maxDamp), reports)
    }
}

/// A model source whose tensors `replaced` (GGUF names) read as the given fp32 values (AWQ's
/// folded norms), the rest as the base source's.
final class ReplacedSource: ModelSource {
    let base: ModelSource
    let replaced: [String: [Float]]

    init(_ base: ModelSource, replaced: [String: [Float]]) {
        self.base = base
        self.replaced = replaced
    }

    var path: String { base.path }
    var config: ModelConfig { base.config }
    var metadata: [(key: String, value: GGUFValue)] { base.metadata }
    var tensors: [SourceTensor] { base.tensors }
    func values(_ name: String) throws -> [Float] { try replaced[name] ?? base.values(name) }
    func storedBytes(_ name: String) throws -> UnsafeRawBufferPointer? { replaced[name] == nil ? try base.storedBytes(name) : nil }
    func release(_ name: String) { base.release(name) }
    func tokenizer() throws -> BPETokenizer { try base.tokenizer() }
    var weightFiles: [String] { base.weightFiles }
}

extension SequentialAWQ {
    /// AWQ into GGUF: every planned block weight rescaled, clipped and then rounded by
    /// llama.cpp's quantizer for its planned type, with the importance matrix of the rescaled
    /// inputs; the folded norms written as F32. Returns the export to run (the bytes are
    /// computed here, block by block, so memory holds the output's size, not the model's).
    /// With `gptq` (AWQ + GPTQ), each rescaled weight whose type has a codec is solved by GPTQ
    /// through its GGUF blocks on its input's rescaled Gram matrix instead of rounded.
    public static func gguf(source: ModelSource, preset: GGUFPreset, options: QuantizationOptions, sequences: [[Int32]], awq: AWQOptions,
                            gptq: GPTQOptions? = nil, threads: Int, progress: ((Int, Int) -> Void)? = nil) throws -> (GGUFExport, maxDamp: Double?) {
        let config = source.config
        let cache = FactorizationCache()
        var maxDamp = gptq?.damp
        var planning = options
        planning.hasImportance = true
        let plan = try QuantizationPlanner(preset: preset, options: planning, headCount: config.headCount, kvHeadCount: config.kvHeadCount,
                                           layerCount: config.layerCount).plan(source.tensors)
        let planned = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0) })
        let specs = config.architecture.tensors(config)
        var bytes: [String: [UInt8]] = [:], replaced: [String: [Float]] = [:], sums: [ImatrixExport.Sums] = []
        // The search rounds each candidate with the tensor's own planned type and the candidate's importance.
        var awq = awq
        awq.keepGram = gptq != nil
        let types = Dictionary(uniqueKeysWithValues: specs.compactMap { spec -> (String, GGMLType)? in
            guard let role = spec.role.linear, let layer = spec.layer, let tensor = planned[spec.ggufName], tensor.quantized else { return nil }
            return ("\(layer).\(role.rawValue)", tensor.type)
        })
        let searchThreads = threads
        awq.quantizer = { role, layer, values, rows, columns, importance in
            guard let type = types["\(layer).\(role.rawValue)"] else { return values }
            let encoded = try Quantization.quantize(type, values, rowLength: columns, importance: importance, threads: searchThreads)
            return try encoded.withUnsafeBytes { try Quantization.dequantize(type, $0, count: rows * columns) }
        }
        let head = try run(source: source, sequences: sequences, options: awq, threads: threads, onBlock: { l, weights, report in
            sums += report.sums
            let importance = ImatrixExport.matrix(report.sums, config: config, dataset: "", chunks: sequences.count, chunkSize: sequences.first?.count ?? 0)
            let rounding = RoundToNearest(importance: importance, threads: threads)
            for spec in specs where spec.layer == l {
                switch spec.role {
                case .attentionNorm: replaced[spec.ggufName] = weights.attentionNorm
                case .ffnNorm: replaced[spec.ggufName] = weights.ffnNorm
                default:
                    guard let role = spec.role.linear, let tensor = planned[spec.ggufName] else { continue }
                    let values = weights[linear: role]
                    if let gptq, tensor.quantized, tensor.dimensions.count == 2, BlockFormats.format(tensor.type)?.codec != nil,
                       let input = LinearInput.feeding(role),
                       let (factorization, statistics) = try report.rescaledFactorization(input, layer: l, options: gptq, cache: cache) {
                        maxDamp = max(maxDamp ?? 0, factorization.damp)
                        bytes[spec.ggufName] = try values.withUnsafeBufferPointer {
                            try GPTQRounding.solve($0, type: tensor.type, rows: tensor.dimensions[1], factorization: factorization,
                                                   tokens: statistics.tokens, threads: threads)
                        }
                    } else if tensor.quantized {
                        bytes[spec.ggufName] = try values.withUnsafeBufferPointer { try rounding.quantize(tensor, $0) }
                    } else {
                        replaced[spec.ggufName] = values
                    }
                }
            }
        }, progress: progress)
        let importance = ImatrixExport.matrix(sums + (head.map { [$0] } ?? []), config: config, dataset: "", chunks: sequences.count,
                                              chunkSize: sequences.first?.count ?? 0)
        let quantizer = PrecomputedQuantizer(bytes: bytes, fallback: RoundToNearest(importance: importance, threads: threads))
        return (GGUFExport(source: ReplacedSource(source, replaced: replaced), preset: preset, options: options, importance: importance,
                           threads: threads, quantizer: quantizer), maxDamp)
    }

    /// The model AWQ makes for one GGUF type, unrounded: every block's pairs searched with that
    /// type's rounding (and the importance of the rescaled inputs), the scales folded into the
    /// norms and the preceding linears, no clipping, so it computes what the original does up to
    /// float rounding. Returns a source reading the folded fp32 weights and the importance matrix
    /// of the rescaled inputs; sensitivity analysis measures `TYPE+awq` on it.
    public static func transformed(source: ModelSource, type: GGMLType, sequences: [[Int32]], awq: AWQOptions, threads: Int,
                                   progress: ((Int, Int) -> Void)? = nil) throws -> (source: ModelSource, importance: ImportanceMatrix) {
        let config = source.config
        try config.checkUnfused("awq")
        let specs = config.architecture.tensors(config)
        var awq = awq
        awq.clip = false
        awq.keepGram = false
        let searchThreads = threads
        awq.quantizer = { _, _, values, rows, columns, importance in
            guard columns % type.blockSize == 0 else { return values }
            let encoded = try Quantization.quantize(type, values, rowLength: columns, importance: importance, threads: searchThreads)
            return try encoded.withUnsafeBytes { try Quantization.dequantize(type, $0, count: rows * columns) }
        }
        var replaced: [String: [Float]] = [:], sums: [ImatrixExport.Sums] = []
        let head = try run(source: source, sequences: sequences, options: awq, threads: threads, onBlock: { l, weights, report in
            sums += report.sums
            for spec in specs where spec.layer == l {
                switch spec.role {
                case .attentionNorm: replaced[spec.ggufName] = weights.attentionNorm
                case .ffnNorm: replaced[spec.ggufName] = weights.ffnNorm
                default: if let role = spec.role.linear { replaced[spec.ggufName] = weights[linear: role] }
                }
            }
        }, progress: progress)
        let importance = ImatrixExport.matrix(sums + (head.map { [$0] } ?? []), config: config, dataset: "", chunks: sequences.count,
                                              chunkSize: sequences.first?.count ?? 0)
        return (ReplacedSource(source, replaced: replaced), importance)
    }
}
