import QuantaCore
import QuantaModel

/// Runs calibration sequences through a model one decoder block at a time: all sequences pass
/// block i, its input statistics are taken, then its outputs become block i+1's inputs. Only
/// one block's weights (loaded from the memory-mapped source and released) and the sequences'
/// hidden states `[sequences * length, hidden]` are alive at once, so a model larger than
/// memory can be calibrated.
public final class BlockRunner {
    /// What a caller sees of block `layer` once its statistics are complete.
    public struct Block {
        public let layer: Int
        /// The statistics of the block's linear inputs (q/k/v, o, gate/up, down).
        public let statistics: [InputStatistics]
        /// The block's weights as loaded (GGUF layout).
        public let weights: DecoderWeights.Layer
        /// The block's inputs `[rows, hidden]` (the outputs of the blocks before it), when the
        /// runner keeps them (`keepInputs`).
        public let inputs: UnsafeBufferPointer<Float>?
    }

    public let source: ModelSource
    public let model: DecoderModel
    public let sequences: [[Int32]]
    public let length: Int
    public var hessian: HessianMode = .full
    /// Threads for the statistics (the forward pass divides its work by itself).
    public var threads = 1
    /// Rows per forward batch (whole sequences; at least one).
    public var batchRows = 2048
    /// Keep llama-imatrix's float sums beside the statistics (`InputStatistics.imatrixSums`; set
    /// with the llamacpp runtime to export its importance matrix bit for bit).
    public var imatrixSums = false
    private var imatrixLength: Int? { imatrixSums ? length : nil }
    /// Keep each block's inputs for the handler (needed to replace a block's weights).
    public var keepInputs = false

    public init(source: ModelSource, sequences: [[Int32]]) throws {
        guard let length = sequences.first?.count, length > 0, sequences.allSatisfy({ $0.count == length }) else {
            throw QuantaError(.invalidArgument, "calibration", "sequences must be non-empty and of equal length")
        }
        self.source = source
        self.sequences = sequences
        self.length = length
        model = try DecoderModel(blocksOf: source)
    }

    public var rows: Int { sequences.count * length }

    /// Runs every block, then the final norm (the output head's input). `onBlock` sees each
    /// block's statistics and may return new weights for it (true-sequential quantization: the
    /// next blocks then see the outputs of the new weights; requires `keepInputs`). `onHead`
    /// sees the head's input statistics. `progress(done, total, tokensPerSecond)` after each block.
    public func run(onBlock: (Block) throws -> DecoderWeights.Layer?, onHead: (InputStatistics) throws -> Void,
                    progress: ((Int, Int, Double) -> Void)? = nil) throws {
        let config = source.config, d = config.hiddenSize
        let X = UnsafeMutablePointer<Float>.allocate(capacity: rows * d)
        defer { X.deallocate() }
        let saved = keepInputs ? UnsafeMutablePointer<Float>.allocate(capacity: rows * d) : nil
        defer { saved?.deallocate() }
        try model.embed(sequences, into: X)
        let perBatch = max(1, batchRows / length)
        let start = monotonicSeconds()
        for l in 0..<config.layerCount {
            let weights = try DecoderWeights.layer(l, from: source)
            saved?.update(from: X, count: rows * d)
            let observer = StatisticsObserver(config: config, layer: l, hessian: hessian, threads: threads, imatrixLength: imatrixLength)
            forEachBatch(perBatch) { first, count in
                model.block(weights, index: l, X + first * length * d, sequences: count, length: length, observer: observer)
            }
            let statistics = observer.finish()
            let replacement = try onBlock(Block(layer: l, statistics: statistics, weights: weights,
                                                inputs: saved.map { UnsafeBufferPointer(start: $0, count: rows * d) }))
            if let replacement {
                guard let saved else {
                    throw QuantaError(.invalidArgument, "calibration", "replacing block \(l)'s weights needs keepInputs")
                }
                X.update(from: saved, count: rows * d)
                forEachBatch(perBatch) { first, count in
                    model.block(replacement, index: l, X + first * length * d, sequences: count, length: length)
                }
            }
            progress?(l + 1, config.layerCount, Double((l + 1) * rows) / max(monotonicSeconds() - start, 1e-9))
        }
        let head = StatisticsObserver(config: config, layer: nil, hessian: hessian, threads: threads, imatrixLength: imatrixLength)
        forEachBatch(perBatch) { first, count in
            _ = model.finalNorm(X + first * length * d, rows: count * length, observer: head)
        }
        try onHead(head.finish()[0])
    }

    /// True-sequential quantization inside blocks too: in every block the linear inputs come in
    /// the order q/k/v -> o -> gate/up -> down, each observed with the weights replaced so far
    /// (in this block and the earlier ones). `onInput(layer, statistics, weights)` returns the
    /// block's weights with those that multiply that input replaced. Five partial passes per
    /// block (norm; q/k/v and attention; o; gate/up; down), each product computed once: the
    /// attention output and the gated activations of every row are kept between passes, so
    /// the runner holds `rows * (hiddenSize + qDim + intermediateSize)` floats. `onHead` sees
    /// the head's input.
    public func runSequential(onInput: (Int, InputStatistics, DecoderWeights.Layer) throws -> DecoderWeights.Layer,
                              onHead: (InputStatistics) throws -> Void, progress: ((Int, Int, Double) -> Void)? = nil) throws {
        let config = source.config, d = config.hiddenSize, qDim = config.qDim, f = config.intermediateSize
        let X = UnsafeMutablePointer<Float>.allocate(capacity: rows * d)
        defer { X.deallocate() }
        let A = UnsafeMutablePointer<Float>.allocate(capacity: rows * qDim)
        defer { A.deallocate() }
        let G = UnsafeMutablePointer<Float>.allocate(capacity: rows * f)
        defer { G.deallocate() }
        try model.embed(sequences, into: X)
        let perBatch = max(1, batchRows / length)
        let start = monotonicSeconds()
        let stages: [(LinearInput?, BlockEntry, LinearRole?)] = [
            (.attentionQKV, .attention, .q), (.attentionOutput, .attention, .o), (.ffnGateUp, .attentionOutput, .gate),
            (.ffnDown, .feedForward, .down), (nil, .down, nil),
        ]
        for l in 0..<config.layerCount {
            var weights = try DecoderWeights.layer(l, from: source)
            for (input, entry, stop) in stages {
                let observer = input.map { StatisticsObserver(config: config, layer: l, hessian: hessian, threads: threads, inputs: [$0],
                                                              imatrixLength: imatrixLength) }
                forEachBatch(perBatch) { first, count in
                    let row = first * length
                    model.block(weights, index: l, X + row * d, sequences: count, length: length, observer: observer, entry: entry, stop: stop,
                                buffers: BlockBuffers(attention: A + row * qDim, hidden: G + row * f))
                }
                if let observer { weights = try onInput(l, observer.finish()[0], weights) }
            }
            progress?(l + 1, config.layerCount, Double((l + 1) * rows) / max(monotonicSeconds() - start, 1e-9))
        }
        let head = StatisticsObserver(config: config, layer: nil, hessian: hessian, threads: threads, imatrixLength: imatrixLength)
        forEachBatch(perBatch) { first, count in
            _ = model.finalNorm(X + first * length * d, rows: count * length, observer: head)
        }
        try onHead(head.finish()[0])
    }

    private func forEachBatch(_ perBatch: Int, _ body: (_ first: Int, _ count: Int) -> Void) {
        for first in stride(from: 0, to: sequences.count, by: perBatch) {
            body(first, min(perBatch, sequences.count - first))
        }
    }
}

/// Routes the inputs a forward pass shows to one block's (or the head's) statistics.
final class StatisticsObserver: ForwardObserver {
    let statistics: [LinearInput: InputStatistics]
    let threads: Int

    init(config: ModelConfig, layer: Int?, hessian: HessianMode, threads: Int, inputs: [LinearInput]? = nil, imatrixLength: Int? = nil) {
        let inputs: [LinearInput] = inputs ?? (layer == nil ? [.output] : [.attentionQKV, .attentionOutput, .ffnGateUp, .ffnDown])
        statistics = Dictionary(uniqueKeysWithValues: inputs.map {
            let statistics = InputStatistics(layer: layer, input: $0, columns: $0.columns(config), hessian: hessian)
            statistics.imatrixLength = imatrixLength
            return ($0, statistics)
        })
        self.threads = threads
    }

    func linearInput(layer: Int, role: LinearRole, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
        guard let input = LinearInput(observed: role), let target = statistics[input] else { return }
        precondition(columns == target.columns, "\(target.name): \(columns) columns observed, \(target.columns) expected")
        target.add(x.baseAddress!, rows: rows, threads: threads)
    }

    func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {}

    /// The statistics in `LinearInput` order, finished.
    func finish() -> [InputStatistics] {
        LinearInput.allCases.compactMap { statistics[$0] }.map { $0.finish(); $0.releaseScratch(); return $0 }
    }
}
