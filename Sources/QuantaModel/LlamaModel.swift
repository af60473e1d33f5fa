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

/// How matrix products treat activations.
public enum Runtime: String, Sendable, CaseIterable {
    /// fp32 activations against the (dequantized) weights: the weight error alone.
    case fp32
    /// As llama.cpp's CPU backend runs a GGUF: activations quantized to each weight type's
    /// dot-product format (Q8_0/Q8_1/Q8_K blocks, f16), and K/V rounded to f16 as its KV cache.
    case llamacpp
}

/// A Llama-family decoder in fp32: whole causal sequences, no KV cache, every matrix product
/// through OpenBLAS sgemm, attention batched per head.
public final class LlamaModel: @unchecked Sendable {
    public let config: TransformerConfig
    public var weights: LlamaWeights
    public var runtime: Runtime = .fp32
    /// The tokenizer that came with the model.
    public let tokenizer: BPETokenizer
    public let path: String
    private let cosTable: [Float]
    private let sinTable: [Float]
    private let maxPositions: Int

    public init(config: TransformerConfig, weights: LlamaWeights, tokenizer: BPETokenizer, path: String, maxPositions: Int = 4096) {
        self.config = config
        self.weights = weights
        self.tokenizer = tokenizer
        self.path = path
        self.maxPositions = maxPositions
        // Rotary angles pos * theta^(-2i/d), computed in Double.
        let half = config.headDim / 2
        var cosTable = [Float](repeating: 0, count: maxPositions * half), sinTable = cosTable
        for pos in 0..<maxPositions {
            for i in 0..<half {
                let angle = Double(pos) * pow(Double(config.ropeTheta), -2 * Double(i) / Double(config.headDim))
                cosTable[pos * half + i] = Float(cos(angle))
                sinTable[pos * half + i] = Float(sin(angle))
            }
        }
        self.cosTable = cosTable
        self.sinTable = sinTable
    }

    /// Opens a Hugging Face folder or a GGUF file (quantized tensors dequantized on load).
    public convenience init(path: String) throws {
        if FileSystem.kind(of: path) == .folder {
            let folder = try HFModelFolder(path: path)
            let config = TransformerConfig(folder.config)
            guard let tokenizerPath = folder.tokenizerPath else {
                throw QuantaError(.notFound, FileSystem.join(path, "tokenizer.json"), "the model folder has no tokenizer.json")
            }
            let configPath = FileSystem.join(path, "tokenizer_config.json")
            let tokenizerConfig = FileSystem.kind(of: configPath) == .file ? try HFModelFolder.readJSON(configPath) : nil
            let tokenizer = try BPETokenizer(tokenizerJSON: tokenizerPath, tokenizerConfig: tokenizerConfig, config: folder.config)
            self.init(config: config, weights: try LlamaWeights.load(folder: folder, config: config), tokenizer: tokenizer, path: path)
        } else {
            let file = try GGUFFile(path: path)
            let config = try TransformerConfig(gguf: file)
            self.init(config: config, weights: try LlamaWeights.load(gguf: file, config: config), tokenizer: try BPETokenizer(gguf: file),
                      path: path)
        }
    }

    /// Rotates `count` rows of `heads` heads (row stride `stride`) for positions 0..<count.
    private func rope(_ x: UnsafeMutablePointer<Float>, count: Int, heads: Int, stride: Int) {
        let hd = config.headDim, half = hd / 2
        for t in 0..<count {
            let c = cosTable.withUnsafeBufferPointer { $0.baseAddress! + (t % maxPositions) * half }
            let s = sinTable.withUnsafeBufferPointer { $0.baseAddress! + (t % maxPositions) * half }
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

    /// The input a linear layer of storage type `type` multiplies under `runtime`: `x` itself,
    /// or its llama.cpp activation round trip in `scratch`.
    private func linearInput(_ x: UnsafePointer<Float>, count: Int, rowLength: Int, type: GGMLType?,
                             scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        guard runtime == .llamacpp, let type, let dotType = ActivationQuantization.vecDotType(for: type),
              rowLength % dotType.blockSize == 0 else { return x }
        scratch.update(from: x, count: count)
        ActivationQuantization.roundTrip(dotType, scratch, count: count, rowLength: rowLength)
        return UnsafePointer(scratch)
    }

    /// Logits `[sequences.count * T, vocab]` for equal-length token sequences of length T
    /// (each causal on its own).
    public func logits(_ sequences: [[Int32]], observer: ForwardObserver? = nil) throws -> [Float] {
        guard let T = sequences.first?.count, T > 0, sequences.allSatisfy({ $0.count == T }) else {
            throw QuantaError(.invalidArgument, "forward pass", "sequences must be non-empty and of equal length")
        }
        guard T <= maxPositions else {
            throw QuantaError(.invalidArgument, "forward pass", "sequence of \(T) tokens exceeds \(maxPositions) positions")
        }
        let c = config, d = c.hiddenSize, f = c.intermediateSize, B = sequences.count, rows = B * T
        for (s, sequence) in sequences.enumerated() {
            if let bad = sequence.firstIndex(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
                throw QuantaError(.invalidArgument, "sequence \(s)", "token \(sequence[bad]) at \(bad) is outside the vocabulary of \(c.vocabSize)")
            }
        }
        var x = [Float](repeating: 0, count: rows * d)
        var h = [Float](repeating: 0, count: rows * d)
        var q = [Float](repeating: 0, count: rows * c.qDim)
        var k = [Float](repeating: 0, count: rows * c.kvDim)
        var v = [Float](repeating: 0, count: rows * c.kvDim)
        var attn = [Float](repeating: 0, count: rows * c.qDim)
        var scores = [Float](repeating: 0, count: T * T)
        var gate = [Float](repeating: 0, count: rows * f)
        var up = [Float](repeating: 0, count: rows * f)
        let scratchCount = runtime == .llamacpp ? rows * max(d, f, c.qDim) : 0
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(scratchCount, 1))
        defer { scratch.deallocate() }
        weights.embedding.withUnsafeBufferPointer { e in
            for (s, sequence) in sequences.enumerated() {
                for (t, token) in sequence.enumerated() {
                    (x.withUnsafeMutableBufferPointer { $0.baseAddress! } + (s * T + t) * d)
                        .update(from: e.baseAddress! + Int(token) * d, count: d)
                }
            }
        }
        let group = c.headCount / c.kvHeadCount
        let scale = 1 / Float(c.headDim).squareRoot()
        x.withUnsafeMutableBufferPointer { xb in
        h.withUnsafeMutableBufferPointer { hb in
        q.withUnsafeMutableBufferPointer { qb in
        k.withUnsafeMutableBufferPointer { kb in
        v.withUnsafeMutableBufferPointer { vb in
        attn.withUnsafeMutableBufferPointer { ab in
        scores.withUnsafeMutableBufferPointer { sb in
        gate.withUnsafeMutableBufferPointer { gb in
        up.withUnsafeMutableBufferPointer { ub in
            let X = xb.baseAddress!, H = hb.baseAddress!, Q = qb.baseAddress!, K = kb.baseAddress!, V = vb.baseAddress!
            let A = ab.baseAddress!, S = sb.baseAddress!, G = gb.baseAddress!, U = ub.baseAddress!
            for (l, layer) in weights.layers.enumerated() {
                layer.attentionNorm.withUnsafeBufferPointer { Kernels.rmsNorm(X, $0.baseAddress!, H, rows: rows, n: d, eps: c.rmsNormEps) }
                if let observer {
                    for role in [LinearRole.q, .k, .v] { observer.linearInput(layer: l, role: role, UnsafeBufferPointer(hb), rows: rows, columns: d) }
                }
                var hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.q], scratch: scratch)
                layer.q.withUnsafeBufferPointer { Kernels.gemmNT(rows, c.qDim, d, hq, d, $0.baseAddress!, d, Q, c.qDim) }
                hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.k], scratch: scratch)
                layer.k.withUnsafeBufferPointer { Kernels.gemmNT(rows, c.kvDim, d, hq, d, $0.baseAddress!, d, K, c.kvDim) }
                hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.v], scratch: scratch)
                layer.v.withUnsafeBufferPointer { Kernels.gemmNT(rows, c.kvDim, d, hq, d, $0.baseAddress!, d, V, c.kvDim) }
                layer.qBias?.withUnsafeBufferPointer { Kernels.add(Q, $0.baseAddress!, rows: rows, n: c.qDim) }
                layer.kBias?.withUnsafeBufferPointer { Kernels.add(K, $0.baseAddress!, rows: rows, n: c.kvDim) }
                layer.vBias?.withUnsafeBufferPointer { Kernels.add(V, $0.baseAddress!, rows: rows, n: c.kvDim) }
                for s in 0..<B {
                    rope(Q + s * T * c.qDim, count: T, heads: c.headCount, stride: c.qDim)
                    rope(K + s * T * c.kvDim, count: T, heads: c.kvHeadCount, stride: c.kvDim)
                    if runtime == .llamacpp {  // llama.cpp keeps K and V in an f16 cache
                        ActivationQuantization.roundTrip(.f16, K + s * T * c.kvDim, count: T * c.kvDim, rowLength: c.kvDim)
                        ActivationQuantization.roundTrip(.f16, V + s * T * c.kvDim, count: T * c.kvDim, rowLength: c.kvDim)
                    }
                    for head in 0..<c.headCount {
                        let kvHead = head / group
                        let qh = Q + s * T * c.qDim + head * c.headDim
                        let kh = K + s * T * c.kvDim + kvHead * c.headDim
                        let vh = V + s * T * c.kvDim + kvHead * c.headDim
                        Kernels.gemmNT(T, T, c.headDim, qh, c.qDim, kh, c.kvDim, S, T, alpha: scale)
                        for t in 0..<T { Kernels.causalSoftmax(S, row: t, n: T, valid: t + 1) }
                        Kernels.gemmNN(T, c.headDim, T, S, T, vh, c.kvDim, A + s * T * c.qDim + head * c.headDim, c.qDim)
                    }
                }
                observer?.linearInput(layer: l, role: .o, UnsafeBufferPointer(ab), rows: rows, columns: c.qDim)
                let ao = linearInput(A, count: rows * c.qDim, rowLength: c.qDim, type: layer.types[.o], scratch: scratch)
                layer.o.withUnsafeBufferPointer { Kernels.gemmNT(rows, d, c.qDim, ao, c.qDim, $0.baseAddress!, c.qDim, X, d, accumulate: true) }
                layer.ffnNorm.withUnsafeBufferPointer { Kernels.rmsNorm(X, $0.baseAddress!, H, rows: rows, n: d, eps: c.rmsNormEps) }
                if let observer {
                    for role in [LinearRole.gate, .up] { observer.linearInput(layer: l, role: role, UnsafeBufferPointer(hb), rows: rows, columns: d) }
                }
                hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.gate], scratch: scratch)
                layer.gate.withUnsafeBufferPointer { Kernels.gemmNT(rows, f, d, hq, d, $0.baseAddress!, d, G, f) }
                hq = linearInput(H, count: rows * d, rowLength: d, type: layer.types[.up], scratch: scratch)
                layer.up.withUnsafeBufferPointer { Kernels.gemmNT(rows, f, d, hq, d, $0.baseAddress!, d, U, f) }
                Kernels.swiglu(G, U, count: rows * f)
                observer?.linearInput(layer: l, role: .down, UnsafeBufferPointer(gb), rows: rows, columns: f)
                let gd = linearInput(G, count: rows * f, rowLength: f, type: layer.types[.down], scratch: scratch)
                layer.down.withUnsafeBufferPointer { Kernels.gemmNT(rows, d, f, gd, f, $0.baseAddress!, f, X, d, accumulate: true) }
                observer?.blockOutput(layer: l, UnsafeBufferPointer(xb), rows: rows, columns: d)
            }
            weights.outputNorm.withUnsafeBufferPointer { Kernels.rmsNorm(X, $0.baseAddress!, H, rows: rows, n: d, eps: c.rmsNormEps) }
            observer?.linearInput(layer: -1, role: .output, UnsafeBufferPointer(hb), rows: rows, columns: d)
        } } } } } } } } }
        var logits = [Float](repeating: 0, count: rows * c.vocabSize)
        let head = weights.output ?? weights.embedding
        h.withUnsafeBufferPointer { hb in
            let input = linearInput(hb.baseAddress!, count: rows * d, rowLength: d, type: weights.outputType, scratch: scratch)
            head.withUnsafeBufferPointer { w in
                logits.withUnsafeMutableBufferPointer {
                    Kernels.gemmNT(rows, c.vocabSize, d, input, d, w.baseAddress!, d, $0.baseAddress!, c.vocabSize)
                }
            }
        }
        return logits
    }
}

#if canImport(Glibc)
import Glibc
#endif
