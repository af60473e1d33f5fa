import CBLAS
import Dispatch
import QuantaCore
import QuantaFormats
import QuantaIO

/// The linear layers of a decoder block (and the head), as observers see them.
public enum LinearRole: String, Sendable, CaseIterable {
    case q, k, v, o, gate, up, down, output
}

/// Sees activations during a forward pass without copies: each buffer is valid only during the
/// call. `rows` is the number of token positions, `columns` the feature width.
public protocol ForwardObserver: AnyObject {
    /// The input of a linear layer (`layer` is -1 for the output head).
    func linearInput(layer: Int, role: LinearRole, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int)
    /// The residual stream after decoder block `layer`.
    func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int)
}

/// Where a (partial) pass through a decoder block starts.
public enum BlockEntry: Sendable {
    /// At the block's input.
    case attention
    /// At the output projection: the kept attention output (`BlockBuffers.attention`) is
    /// multiplied by o and added to the residual stream.
    case attentionOutput
    /// At the residual stream after attention (the feed-forward half).
    case feedForward
    /// At the down projection: the kept gated activations (`BlockBuffers.hidden`) are multiplied
    /// by down and added to the residual stream.
    case down
}

/// Caller-owned activations a partial block pass keeps for the next one, for the rows of one
/// call: the attention output `[rows, qDim]` and the gated feed-forward activations `[rows, intermediateSize]`.
public struct BlockBuffers {
    public let attention: UnsafeMutablePointer<Float>
    public let hidden: UnsafeMutablePointer<Float>

    public init(attention: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>) {
        self.attention = attention
        self.hidden = hidden
    }
}

/// How matrix products treat activations.
public enum Runtime: String, Sendable, CaseIterable {
    /// fp32 activations against the (dequantized) weights: the weight error alone.
    case fp32
    /// As llama.cpp's CPU backend runs a GGUF: activations quantized to each weight type's
    /// dot-product format (Q8_0/Q8_1/Q8_K blocks, f16), and K/V rounded to f16 as its KV cache.
    case llamacpp
}

/// Reusable activation buffers: large fresh allocations cost page faults on every pass.
final class Workspace {
    private var buffers: [UnsafeMutablePointer<Float>] = []
    private var capacities: [Int] = []

    /// Buffer `index` with room for at least `count` floats (contents unspecified).
    func buffer(_ index: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        while buffers.count <= index {
            buffers.append(.allocate(capacity: 1))
            capacities.append(1)
        }
        if capacities[index] < count {
            buffers[index].deallocate()
            buffers[index] = .allocate(capacity: count)
            capacities[index] = count
        }
        return buffers[index]
    }

    deinit { for b in buffers { b.deallocate() } }
}

/// A decoder-only transformer of any registered architecture (llama, mistral, qwen2, qwen3,
/// gemma3, phi3), in fp32: whole causal sequences, no KV cache, every matrix product through OpenBLAS
/// sgemm, attention batched per head. The block is the Llama block with the options the family's
/// config turns on (q/k/v biases, per-head q/k RMSNorm, a sliding window on all or some layers
/// with their own RoPE base, scaled embeddings, GeGLU, post-attention and post-feed-forward
/// norms, the attention scale of `query_pre_attn_scalar`, partial rotary dimensions, LongRoPE;
/// fused projections are split when the weights load). One forward pass at a
/// time per model (activation buffers are reused between passes).
public final class DecoderModel: @unchecked Sendable {
    private let workspace = Workspace()
    public let config: ModelConfig
    public var weights: DecoderWeights
    public var runtime: Runtime = .fp32
    /// The tokenizer that came with the model.
    public let tokenizer: BPETokenizer
    public let path: String
    private let cosTable: [Float]
    private let sinTable: [Float]
    /// The rotary tables of the sliding-window layers when their base differs (`ropeLocalTheta`).
    private let localTables: (cos: [Float], sin: [Float])?
    /// LongRoPE's tables with the long factors, for sequences longer than the original context.
    private let longTables: (cos: [Float], sin: [Float])?
    private let maxPositions: Int
    /// Where blocks 1... are read from on each pass (`init(streamingBlocksOf:)`); nil when
    /// every block's weights are in `weights`.
    private var blockSource: GGUFSource?
    /// RoPE's tables as ggml computes them (float angles), made on first use by the llamacpp
    /// runtime; nil when the rotation is not plain (scaled, partial, LongRoPE or two bases).
    private lazy var ggmlTables: (cos: [Float], sin: [Float])? = {
        let c = config
        guard c.ropeLinearFactor == nil, c.longRope == nil, c.ropeLocalTheta == nil, c.rotaryDimensions == c.headDim else { return nil }
        return GGMLOrder.ropeTables(base: Float(c.ropeTheta), dimensions: c.headDim, positions: maxPositions)
    }()

    public init(config: ModelConfig, weights: DecoderWeights, tokenizer: BPETokenizer, path: String, maxPositions: Int = 4096) {
        self.config = config
        self.weights = weights
        self.tokenizer = tokenizer
        self.path = path
        self.maxPositions = maxPositions
        let dims = config.rotaryDimensions, long = config.longRope
        (cosTable, sinTable) = DecoderModel.rotaryTables(theta: config.ropeTheta, factor: config.ropeLinearFactor, dimensions: dims,
                                                         positions: maxPositions, divisors: long?.short, scale: long?.attentionFactor ?? 1)
        localTables = config.ropeLocalTheta.map {
            DecoderModel.rotaryTables(theta: $0, factor: nil, dimensions: dims, positions: maxPositions)
        }
        longTables = long.map {
            DecoderModel.rotaryTables(theta: config.ropeTheta, factor: nil, dimensions: dims, positions: maxPositions,
                                      divisors: $0.long, scale: $0.attentionFactor)
        }
        // Quanta divides the work among cores itself; OpenBLAS's own threads would only contend.
        openblas_set_num_threads(1)
    }

    /// Opens a Hugging Face folder or a GGUF file (quantized tensors dequantized on load).
    public convenience init(path: String) throws {
        if FileSystem.kind(of: path) == .folder {
            let folder = try ModelFolder(path: path)
            guard let tokenizerPath = folder.tokenizerPath else {
                throw QuantaError(.notFound, FileSystem.join(path, "tokenizer.json"), "the model folder has no tokenizer.json")
            }
            let tokenizer = try BPETokenizer(tokenizerJSON: tokenizerPath, tokenizerConfig: folder.files.tokenizerConfig, config: folder.config)
            self.init(config: folder.config, weights: try DecoderWeights.load(folder: folder), tokenizer: tokenizer, path: path)
        } else {
            let file = try GGUFFile(path: path)
            let config = try ArchitectureRegistry.config(gguf: file)
            self.init(config: config, weights: try DecoderWeights.load(gguf: file, config: config), tokenizer: try BPETokenizer(gguf: file),
                      path: path)
        }
    }

    /// Opens a model as `init(path:)` does, except that a GGUF file whose block weights are
    /// stored quantized or in half precision keeps them in the file: each pass dequantizes a
    /// block's weights just before running it and frees them after, so memory holds the fp32
    /// weights of the embedding, the head, block 0 and the running block instead of all blocks.
    /// The numbers are those of `init(path:)`; each pass pays the dequantization.
    public convenience init(streamingBlocksOf path: String) throws {
        guard FileSystem.kind(of: path) != .folder else {
            try self.init(path: path)
            return
        }
        let source = try GGUFSource(path: path)
        let streams = source.tensors.contains { $0.layer != nil && $0.type != .f32 }
        // Block 0 stays loaded: it is what `headFollowsGGML` inspects.
        let weights = try DecoderWeights.load(from: source) { !streams || $0.layer == nil || $0.layer == 0 }
        self.init(config: source.config, weights: weights, tokenizer: try source.tokenizer(), path: path)
        if streams { blockSource = source }
    }

    /// The parts of `source` outside the blocks (embedding, final norm; the head when `head`),
    /// for running blocks one at a time with weights loaded per block (see `block`).
    public convenience init(blocksOf source: ModelSource, head: Bool = false) throws {
        let weights = try DecoderWeights.load(from: source) { $0.layer == nil && (head || $0.role != .output) }
        self.init(config: source.config, weights: weights, tokenizer: try source.tokenizer(), path: source.path)
    }

    /// Rotary angles pos / factor * theta^(-2i/d) / divisors[i] over `dimensions` = d rotated
    /// dimensions (`factor` nil: no scaling; `divisors` nil: none), computed in Double: their
    /// cosines and sines times `scale`, `[positions, d / 2]`.
    static func rotaryTables(theta: Double, factor: Double?, dimensions: Int, positions: Int,
                             divisors: [Float]? = nil, scale: Double = 1) -> (cos: [Float], sin: [Float]) {
        let half = dimensions / 2
        var cosTable = [Float](repeating: 0, count: positions * half), sinTable = cosTable
        for pos in 0..<positions {
            let p = factor.map { Double(pos) / $0 } ?? Double(pos)
            for i in 0..<half {
                var angle = p * pow(Double(Float(theta)), -2 * Double(i) / Double(dimensions))
                if let divisors { angle /= Double(divisors[i]) }
                cosTable[pos * half + i] = Float(cos(angle) * scale)
                sinTable[pos * half + i] = Float(sin(angle) * scale)
            }
        }
        return (cosTable, sinTable)
    }

    /// Rotates the first `rotaryDimensions` of each head in `count` rows of `heads` heads (row
    /// stride `stride`) for positions 0..<count, with the sliding-window layers' tables when
    /// `local` (and they differ), LongRoPE's long tables when `count` exceeds the original context.
    private func rope(_ x: UnsafeMutablePointer<Float>, count: Int, heads: Int, stride: Int, local: Bool = false) {
        let hd = config.headDim, half = config.rotaryDimensions / 2
        let long = count > (config.originalContext ?? config.maxPositionEmbeddings) ? longTables : nil
        let (cosines, sines) = local ? localTables ?? (cosTable, sinTable) : long ?? (cosTable, sinTable)
        for t in 0..<count {
            let c = cosines.withUnsafeBufferPointer { $0.baseAddress! + (t % maxPositions) * half }
            let s = sines.withUnsafeBufferPointer { $0.baseAddress! + (t % maxPositions) * half }
            for h in 0..<heads {
                let v = x + t * stride + h * hd
                switch weights.ropeLayout {
                case .halves:
                    for i in 0..<half {
                        let a = v[i], b = v[i + half]
                        v[i] = a * c[i] - b * s[i]
                        v[i + half] = b * c[i] + a * s[i]
                    }
                case .interleaved:
                    for i in 0..<half {
                        let a = v[2 * i], b = v[2 * i + 1]
                        v[2 * i] = a * c[i] - b * s[i]
                        v[2 * i + 1] = a * s[i] + b * c[i]
                    }
                }
            }
        }
    }

    /// `rope` with ggml's float angle tables and fused multiply-adds (`GGMLOrder`).
    private func ropeGGML(_ x: UnsafeMutablePointer<Float>, count: Int, heads: Int, stride: Int, tables: (cos: [Float], sin: [Float])) {
        let hd = config.headDim, half = hd / 2, layout = weights.ropeLayout
        tables.cos.withUnsafeBufferPointer { cb in
            tables.sin.withUnsafeBufferPointer { sb in
                for t in 0..<count {
                    let c = cb.baseAddress! + t * half, s = sb.baseAddress! + t * half
                    for h in 0..<heads {
                        let v = x + t * stride + h * hd
                        for i in 0..<half {
                            let (i0, i1) = layout == .halves ? (i, i + half) : (2 * i, 2 * i + 1)
                            (v[i0], v[i1]) = GGMLOrder.rotate(v[i0], v[i1], cos: c[i], sin: s[i])
                        }
                    }
                }
            }
        }
    }

    /// Whether block `layer` runs every operation in ggml's order under the llamacpp runtime
    /// (`GGMLOrder`): f32 weights, a plain Llama block (SwiGLU, no post-norms, no sliding window,
    /// the default attention scale, plain RoPE) and widths of whole 16-float vectors.
    private func followsGGML(_ layer: DecoderWeights.Layer, slides: Bool) -> Bool {
        let c = config
        guard runtime == .llamacpp, c.activation == .silu, layer.attentionPostNorm == nil, layer.ffnPostNorm == nil, !slides,
              c.queryPreAttentionScalar == nil, [c.hiddenSize, c.qDim, c.intermediateSize, c.headDim].allSatisfy({ $0 % 16 == 0 }),
              LinearRole.allCases.allSatisfy({ layer.types[$0].map { $0 == .f32 } ?? true }) else { return false }
        return ggmlTables != nil
    }

    /// Whether the final norm and the head run in ggml's order: the blocks do (`followsGGML`) and the head is f32.
    private var headFollowsGGML: Bool {
        guard let first = weights.layers.first, weights.outputType == nil || weights.outputType == .f32 else { return false }
        return followsGGML(first, slides: false)
    }

    /// Worker threads of every forward pass in the process (default: the online cores; at least
    /// 1). Set it before any pass: each output element is computed the same way whatever the
    /// count, so logits do not depend on it.
    public static var threads: Int {
        get { Kernels.cores }
        set { Kernels.cores = max(1, newValue) }
    }

    /// Query rows per attention block (causal attention skips the keys after each block).
    public var attentionBlock = 128

    /// Causal attention of one sequence: heads split across cores, each head's products on
    /// single-threaded BLAS (small products gain nothing from BLAS threads and lose to their wake-ups).
    private func attention(_ Q: UnsafeMutablePointer<Float>, _ K: UnsafeMutablePointer<Float>, _ V: UnsafeMutablePointer<Float>,
                           _ A: UnsafeMutablePointer<Float>, T: Int, scale: Float, window: Int?) {
        let c = config
        let group = c.headCount / c.kvHeadCount
        let workers = min(Kernels.cores, c.headCount)
        let scores = workspace.buffer(11, workers * T * T)
        let block = attentionBlock
        let window = window ?? Int.max / 2
        let roundProbabilities = runtime == .llamacpp
        nonisolated(unsafe) let (q, k, v, a, s) = (Q, K, V, A, scores)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let S = s + worker * T * T
            for head in stride(from: worker, to: c.headCount, by: workers) {
                let kvHead = head / group
                let qh = q + head * c.headDim, kh = k + kvHead * c.headDim, vh = v + kvHead * c.headDim
                // Causal: query block [r0, r1) only needs keys [0, r1), which halves the work.
                for r0 in stride(from: 0, to: T, by: block) {
                    let r1 = min(T, r0 + block)
                    Kernels.gemmNT(r1 - r0, r1, c.headDim, qh + r0 * c.qDim, c.qDim, kh, c.kvDim, S, r1, alpha: scale)
                    for t in r0..<r1 { Kernels.causalSoftmax(S, row: t - r0, n: r1, valid: t + 1, first: max(0, t + 1 - window)) }
                    if roundProbabilities {  // llama.cpp multiplies the f16 V cache by f16 probabilities
                        ActivationQuantization.roundTrip(.f16, S, count: (r1 - r0) * r1, rowLength: r1)
                    }
                    Kernels.gemmNN(r1 - r0, c.headDim, r1, S, r1, vh, c.kvDim, a + r0 * c.qDim + head * c.headDim, c.qDim)
                }
            }
        }
    }

    /// The input a linear layer of storage type `type` multiplies under `runtime`: `x` itself,
    /// or its llama.cpp activation round trip in `scratch`, rows spread over the cores (each
    /// block is rounded on its own). When `previous` (the type of the last call's layer on the
    /// same `x` and `scratch`) rounds the same way, `scratch` already holds the result.
    private func linearInput(_ x: UnsafePointer<Float>, count: Int, rowLength: Int, type: GGMLType?,
                             scratch: UnsafeMutablePointer<Float>, previous: GGMLType? = nil) -> UnsafePointer<Float> {
        guard runtime == .llamacpp, let type, let dotType = ActivationQuantization.vecDotType(for: type),
              rowLength % dotType.blockSize == 0 else { return x }
        if let previous, ActivationQuantization.vecDotType(for: previous) == dotType { return UnsafePointer(scratch) }
        let rows = count / rowLength, workers = max(1, min(Kernels.cores, rows / 16))
        nonisolated(unsafe) let (source, target) = (x, scratch)
        let run: @Sendable (Int) -> Void = { worker in
            let r0 = rows * worker / workers, r1 = rows * (worker + 1) / workers
            guard r1 > r0 else { return }
            let from = r0 * rowLength, n = (r1 - r0) * rowLength
            (target + from).update(from: source + from, count: n)
            ActivationQuantization.roundTrip(dotType, target + from, count: n, rowLength: rowLength)
        }
        if workers == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: run) }
        return UnsafePointer(scratch)
    }

    /// Logits `[sequences.count * T, vocab]` for equal-length token sequences of length T
    /// (each causal on its own).
    public func logits(_ sequences: [[Int32]], observer: ForwardObserver? = nil) throws -> [Float] {
        try withLogits(sequences, observer: observer) { Array($0) }
    }

    /// Calls `body` with the logits `[sequences.count * T, vocab]` in the model's own buffer
    /// (valid during the call only), saving the copy `logits(_:)` makes.
    /// With `scoredFrom` > 0 only positions `scoredFrom..<T` of each sequence get logits:
    /// `body` sees `[sequences.count * (T - scoredFrom), vocab]` (what a perplexity protocol scores).
    public func withLogits<R>(_ sequences: [[Int32]], scoredFrom: Int = 0, observer: ForwardObserver? = nil,
                              _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        guard let T = sequences.first?.count, T > 0, sequences.allSatisfy({ $0.count == T }) else {
            throw QuantaError(.invalidArgument, "forward pass", "sequences must be non-empty and of equal length")
        }
        guard T <= maxPositions else {
            throw QuantaError(.invalidArgument, "forward pass", "sequence of \(T) tokens exceeds \(maxPositions) positions")
        }
        let X = workspace.buffer(0, sequences.count * T * config.hiddenSize)
        try embed(sequences, into: X)
        guard scoredFrom >= 0 && scoredFrom < T else {
            throw QuantaError(.invalidArgument, "forward pass", "first scored position \(scoredFrom) is outside 0..<\(T)")
        }
        return try withLogits(residual: X, sequences: sequences.count, length: T, from: 0, scoredFrom: scoredFrom, observer: observer, body)
    }

    /// Runs blocks `from..<layerCount` in place on the residual stream `X` `[B * T, hiddenSize]`
    /// (the input of block `from`; `from == layerCount` runs the head alone), then calls `body`
    /// with the logits `[B * T, vocab]` in the model's own buffer (valid during the call only).
    /// `X` must not be a buffer the blocks or the head work in (the caller's own, or `withLogits(_:)`'s input buffer).
    public func withLogits<R>(residual X: UnsafeMutablePointer<Float>, sequences B: Int, length T: Int, from: Int, scoredFrom: Int = 0,
                              observer: ForwardObserver? = nil, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        precondition(from >= 0 && from <= weights.layers.count && T <= maxPositions, "block \(from) of \(weights.layers.count), \(T) positions")
        precondition(scoredFrom >= 0 && scoredFrom < T, "first scored position \(scoredFrom) of \(T)")
        let c = config, d = c.hiddenSize, kept = T - scoredFrom, rows = B * kept
        for l in from..<weights.layers.count {
            if let blockSource, l > 0 {
                block(try DecoderWeights.layer(l, from: blockSource), index: l, X, sequences: B, length: T, observer: observer)
            } else {
                block(weights.layers[l], index: l, X, sequences: B, length: T, observer: observer)
            }
        }
        var scored = UnsafePointer(X)
        if scoredFrom > 0 {
            let G = workspace.buffer(13, rows * d)
            for b in 0..<B { (G + b * kept * d).update(from: X + (b * T + scoredFrom) * d, count: kept * d) }
            scored = UnsafePointer(G)
        }
        let H = finalNorm(scored, rows: rows, observer: observer)
        let logits = workspace.buffer(10, rows * c.vocabSize)
        let head = weights.output ?? weights.embedding
        let scratch = workspace.buffer(9, runtime == .llamacpp ? rows * d : 1)
        let input = linearInput(H, count: rows * d, rowLength: d, type: weights.outputType, scratch: scratch)
        head.withUnsafeBufferPointer { w in
            if headFollowsGGML {
                Kernels.gemmNTggml(rows, c.vocabSize, d, input, w.baseAddress!, logits)
            } else {
                Kernels.linear(rows, c.vocabSize, d, input, w.baseAddress!, logits)
            }
        }
        return try body(UnsafeBufferPointer(start: logits, count: rows * c.vocabSize))
    }

    /// Writes the embeddings of `sequences` (equal lengths T) into `X` `[count * T, hiddenSize]`
    /// (times sqrt(hiddenSize) when the config scales them), checking every token against the vocabulary first.
    public func embed(_ sequences: [[Int32]], into X: UnsafeMutablePointer<Float>) throws {
        let d = config.hiddenSize
        for (s, sequence) in sequences.enumerated() {
            if let bad = sequence.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw QuantaError(.invalidArgument, "sequence \(s)", "token \(sequence[bad]) at \(bad) is outside the vocabulary of \(config.vocabSize)")
            }
        }
        weights.embedding.withUnsafeBufferPointer { e in
            var row = 0
            for sequence in sequences {
                for token in sequence {
                    (X + row * d).update(from: e.baseAddress! + Int(token) * d, count: d)
                    if config.scalesEmbeddings {
                        let scale = Float(Double(d).squareRoot())
                        for j in 0..<d { X[row * d + j] *= scale }
                    }
                    row += 1
                }
            }
        }
    }

    /// The final RMSNorm of `X` `[rows, hiddenSize]` into the model's buffer (valid until the
    /// next pass), shown to `observer` as the output head's input.
    public func finalNorm(_ X: UnsafePointer<Float>, rows: Int, observer: ForwardObserver? = nil) -> UnsafeMutablePointer<Float> {
        let d = config.hiddenSize
        let H = workspace.buffer(1, rows * d)
        weights.outputNorm.withUnsafeBufferPointer {
            if headFollowsGGML {
                GGMLOrder.rmsNorm(X, $0.baseAddress!, H, rows: rows, n: d, eps: Float(config.rmsNormEps))
            } else {
                Kernels.rmsNorm(X, $0.baseAddress!, H, rows: rows, n: d, eps: Float(config.rmsNormEps))
            }
        }
        observer?.linearInput(layer: -1, role: .output, UnsafeBufferPointer(start: H, count: rows * d), rows: rows, columns: d)
        return H
    }

    /// Decoder block `l` with weights `layer`, in place on the residual stream `X`
    /// `[B * T, hiddenSize]` of B causal sequences of T positions each (T <= maxPositions).
    /// A partial pass (true-sequential quantization) starts at `entry` and, with `stop`, returns
    /// right after the observer has seen that linear role's input: `.q` (q/k/v), `.o`, `.gate`
    /// (gate/up) or `.down`, before the product that would change `X`. `buffers` keep the
    /// attention output and gated activations between such passes (needed by the entries
    /// `.attentionOutput` and `.down`, which read what an earlier pass left there).
    public func block(_ layer: DecoderWeights.Layer, index l: Int, _ X: UnsafeMutablePointer<Float>, sequences B: Int, length T: Int,
                      observer: ForwardObserver? = nil, entry: BlockEntry = .attention, stop: LinearRole? = nil, buffers: BlockBuffers? = nil) {
        precondition(buffers != nil || entry == .attention || entry == .feedForward, "entry \(entry) reads kept activations")
        let c = config, d = c.hiddenSize, f = c.intermediateSize, rows = B * T
        let H = workspace.buffer(1, rows * d)
        let Q = workspace.buffer(2, rows * c.qDim), K = workspace.buffer(3, rows * c.kvDim), V = workspace.buffer(4, rows * c.kvDim)
        let A = buffers?.attention ?? workspace.buffer(5, rows * c.qDim)
        let G = buffers?.hidden ?? workspace.buffer(7, rows * f), U = workspace.buffer(8, rows * f)
        let scratch = workspace.buffer(9, runtime == .llamacpp ? rows * max(d, f, c.qDim) : 1)
        let xb = UnsafeMutableBufferPointer(start: X, count: rows * d), hb = UnsafeMutableBufferPointer(start: H, count: rows * d)
        let ab = UnsafeMutableBufferPointer(start: A, count: rows * c.qDim), gb = UnsafeMutableBufferPointer(start: G, count: rows * f)
        let scale = 1 / Float(c.queryPreAttentionScalar ?? Double(c.headDim)).squareRoot(), eps = Float(c.rmsNormEps)
        let slides = c.slides(layer: l)
        // llama.cpp's order for f32 weights; its tiled flash attention where each sequence has at
        // least 64 queries per 512-token micro-batch (llama-perplexity and llama-imatrix put
        // 2048 / T sequences in a batch: T / 4 queries each, so T >= 256).
        let exact = followsGGML(layer, slides: slides), tiled = exact && T >= 256
        let tables = exact ? ggmlTables : nil
        func norm(_ weight: [Float], _ x: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
            weight.withUnsafeBufferPointer {
                if exact { GGMLOrder.rmsNorm(x, $0.baseAddress!, out, rows: rows, n: n, eps: eps) } else { Kernels.rmsNorm(x, $0.baseAddress!, out, rows: rows, n: n, eps: eps) }
            }
        }
        /// X += w · input, as ggml: the product in tinyBLAS's order, then one add per element.
        func addProduct(_ w: [Float], _ input: UnsafePointer<Float>, k: Int) {
            w.withUnsafeBufferPointer { Kernels.gemmNTggml(rows, d, k, input, $0.baseAddress!, X, accumulate: true) }
        }
        var hq: UnsafePointer<Float>
        if entry == .attention {
            norm(layer.attentionNorm, X, H, rows: rows, n: d)
            if let observer {
                for role in [LinearRole.q, .k, .v] { observer.linearInput(layer: l, role: role, UnsafeBufferPointer(hb), rows: rows, columns: d) }
            }
            if stop == .q { return }
            hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.q], scratch: scratch)
            // llama.cpp rounds K and V (and Q) to f16 after these products: for f32 weights take their bits
            // from ggml's own summation order, or values on an f16 rounding midpoint go the other way.
            let ggmlOrder = runtime == .llamacpp && d % 16 == 0
            func project(_ w: [Float], _ type: GGMLType?, _ out: UnsafeMutablePointer<Float>, _ n: Int, _ input: UnsafePointer<Float>) {
                w.withUnsafeBufferPointer {
                    if ggmlOrder && (type == nil || type == .f32) {
                        Kernels.gemmNTggml(rows, n, d, input, $0.baseAddress!, out)
                    } else {
                        Kernels.linear(rows, n, d, input, $0.baseAddress!, out)
                    }
                }
            }
            project(layer.q, layer.types[.q], Q, c.qDim, hq)
            hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.k], scratch: scratch, previous: layer.types[.q])
            project(layer.k, layer.types[.k], K, c.kvDim, hq)
            hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.v], scratch: scratch, previous: layer.types[.k])
            project(layer.v, layer.types[.v], V, c.kvDim, hq)
            layer.qBias?.withUnsafeBufferPointer { Kernels.add(Q, $0.baseAddress!, rows: rows, n: c.qDim) }
            layer.kBias?.withUnsafeBufferPointer { Kernels.add(K, $0.baseAddress!, rows: rows, n: c.kvDim) }
            layer.vBias?.withUnsafeBufferPointer { Kernels.add(V, $0.baseAddress!, rows: rows, n: c.kvDim) }
            // qwen3: RMSNorm over each head's headDim values, before RoPE.
            if let qNorm = layer.qNorm { norm(qNorm, Q, Q, rows: rows * c.headCount, n: c.headDim) }
            if let kNorm = layer.kNorm { norm(kNorm, K, K, rows: rows * c.kvHeadCount, n: c.headDim) }
            // Sequences are independent: their rotations (and f16 round trips) spread over the cores.
            nonisolated(unsafe) let (q, k, v) = (Q, K, V)
            let llamacpp = runtime == .llamacpp, workers = min(Kernels.cores, B)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for s in stride(from: worker, to: B, by: workers) {
                    if let tables {
                        ropeGGML(q + s * T * c.qDim, count: T, heads: c.headCount, stride: c.qDim, tables: tables)
                        ropeGGML(k + s * T * c.kvDim, count: T, heads: c.kvHeadCount, stride: c.kvDim, tables: tables)
                    } else {
                        rope(q + s * T * c.qDim, count: T, heads: c.headCount, stride: c.qDim, local: slides)
                        rope(k + s * T * c.kvDim, count: T, heads: c.kvHeadCount, stride: c.kvDim, local: slides)
                    }
                    if llamacpp {
                        // llama.cpp keeps K and V in an f16 cache; its untiled attention takes Q in f16 too.
                        ActivationQuantization.roundTrip(.f16, k + s * T * c.kvDim, count: T * c.kvDim, rowLength: c.kvDim)
                        ActivationQuantization.roundTrip(.f16, v + s * T * c.kvDim, count: T * c.kvDim, rowLength: c.kvDim)
                        if !tiled { ActivationQuantization.roundTrip(.f16, q + s * T * c.qDim, count: T * c.qDim, rowLength: c.qDim) }
                    }
                }
            }
            for s in 0..<B {
                if tiled {
                    GGMLOrder.attention(Q + s * T * c.qDim, K + s * T * c.kvDim, V + s * T * c.kvDim, A + s * T * c.qDim, T: T,
                                        heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim, qStride: c.qDim, kvStride: c.kvDim,
                                        scale: scale, halves: weights.ropeLayout == .halves)
                } else {
                    attention(Q + s * T * c.qDim, K + s * T * c.kvDim, V + s * T * c.kvDim, A + s * T * c.qDim, T: T, scale: scale,
                              window: slides ? c.slidingWindow : nil)
                }
            }
            observer?.linearInput(layer: l, role: .o, UnsafeBufferPointer(ab), rows: rows, columns: c.qDim)
            if stop == .o { return }
        }
        if entry == .attention || entry == .attentionOutput {
            let ao = linearInput(A, count: rows * c.qDim, rowLength: c.qDim, type: layer.types[.o], scratch: scratch)
            if let postNorm = layer.attentionPostNorm {  // Gemma 3: X += norm(o · A)
                let P = workspace.buffer(12, rows * d)
                layer.o.withUnsafeBufferPointer { Kernels.linear(rows, d, c.qDim, ao, $0.baseAddress!, P) }
                postNorm.withUnsafeBufferPointer { Kernels.rmsNorm(P, $0.baseAddress!, P, rows: rows, n: d, eps: eps) }
                for i in 0..<(rows * d) { X[i] += P[i] }
            } else if exact {
                addProduct(layer.o, ao, k: c.qDim)
            } else {
                layer.o.withUnsafeBufferPointer { Kernels.linear(rows, d, c.qDim, ao, $0.baseAddress!, X, accumulate: true) }
            }
        }
        if entry != .down {
            norm(layer.ffnNorm, X, H, rows: rows, n: d)
            if let observer {
                for role in [LinearRole.gate, .up] { observer.linearInput(layer: l, role: role, UnsafeBufferPointer(hb), rows: rows, columns: d) }
            }
            if stop == .gate { return }
            if exact {
                layer.gate.withUnsafeBufferPointer { Kernels.gemmNTggml(rows, f, d, H, $0.baseAddress!, G) }
                layer.up.withUnsafeBufferPointer { Kernels.gemmNTggml(rows, f, d, H, $0.baseAddress!, U) }
                GGMLOrder.swiglu(G, U, rows: rows, n: f)
            } else {
                hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.gate], scratch: scratch)
                layer.gate.withUnsafeBufferPointer { Kernels.linear(rows, f, d, hq, $0.baseAddress!, G) }
                hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.up], scratch: scratch, previous: layer.types[.gate])
                layer.up.withUnsafeBufferPointer { Kernels.linear(rows, f, d, hq, $0.baseAddress!, U) }
                switch c.activation {
                case .silu: Kernels.swiglu(G, U, count: rows * f)
                case .geluTanh: Kernels.geglu(G, U, count: rows * f)
                }
            }
            observer?.linearInput(layer: l, role: .down, UnsafeBufferPointer(gb), rows: rows, columns: f)
            if stop == .down { return }
        }
        let gd = linearInput(G, count: rows * f, rowLength: f, type: layer.types[.down], scratch: scratch)
        if let postNorm = layer.ffnPostNorm {  // Gemma 3: X += norm(down · G)
            let P = workspace.buffer(12, rows * d)
            layer.down.withUnsafeBufferPointer { Kernels.linear(rows, d, f, gd, $0.baseAddress!, P) }
            postNorm.withUnsafeBufferPointer { Kernels.rmsNorm(P, $0.baseAddress!, P, rows: rows, n: d, eps: eps) }
            for i in 0..<(rows * d) { X[i] += P[i] }
        } else if exact {
            addProduct(layer.down, gd, k: f)
        } else {
            layer.down.withUnsafeBufferPointer { Kernels.linear(rows, d, f, gd, $0.baseAddress!, X, accumulate: true) }
        }
        observer?.blockOutput(layer: l, UnsafeBufferPointer(xb), rows: rows, columns: d)
    }
}

#if canImport(Glibc)
import Glibc
#endif
