import CBLAS
import QuantaCalibration
import QuantaCore
import QuantaModel

/// AWQ's options (Lin et al. 2023; the mit-han-lab/llm-awq reference's defaults).
public struct AWQOptions: Sendable {
    /// The integer grid the weights are finally rounded to (and the search rounds to).
    public var grid = AffineQuantizer.Options()
    /// Points of the alpha grid in [0, 1) for s = mean|x|^alpha.
    public var scaleGrid = 20
    /// AutoAWQ's duo scaling: s = mean|x|^alpha / mean|w|^(1 - alpha).
    public var duoScaling = false
    /// Smooth v -> o under grouped-query attention too (a scale per v output channel shared by
    /// the query heads that read it); the reference skips the pair when the shapes differ.
    public var groupedValuePair = true
    /// Clipping search: grid points, the largest shrink of the range, tokens sampled.
    public var clipGrid = 20
    public var maxShrink: Float = 0.5
    public var clipTokens = 512
    /// Run the clipping search (off: the block is only rescaled, which leaves its function unchanged).
    public var clip = true
    /// Whole samples whose block outputs judge each candidate scale (the mean |x| per channel
    /// uses every sample): 32 x 256 tokens cost a quarter of all 128 for the same KLD here.
    public var searchSequences = 16
    /// Keep each block's Gram matrices (for GPTQ after AWQ).
    public var keepGram = false
    /// Rounds a candidate (role, layer, rescaled weight `[rows, columns]`, the rescaled inputs'
    /// mean x^2 per column) to what the output will store, instead of the integer grid: GGUF
    /// output searches through the planned type's own blocks and importance.
    public var quantizer: (@Sendable (LinearRole, Int, [Float], Int, Int, [Float]) throws -> [Float])?

    public init() {}

    /// The integer grid nearest a GGUF type (`Q4_K_M`, `IQ4_XS`...): its bits, asymmetric, groups
    /// of its sub-block (16 for Q2_K, Q3_K and Q6_K; 32 otherwise).
    public static func grid(nearest typeName: String) -> AffineQuantizer.Options {
        let upper = typeName.uppercased()
        let name = upper.hasPrefix("IQ") ? String(upper.dropFirst()) : upper
        let bits = name.dropFirst().prefix { $0.isNumber }
        var grid = AffineQuantizer.Options()
        grid.bits = min(8, max(2, Int(bits) ?? 4))
        grid.groupSize = ["Q2", "Q3", "Q6"].contains { name.hasPrefix($0 + "_K") } ? 16 : 32
        grid.symmetric = false
        return grid
    }
}

/// The smoothing pairs of a llama block: a preceding operation whose output channels take 1/s
/// and the linears whose input columns take s.
public enum AWQPair: String, Sendable, CaseIterable {
    /// input_layernorm -> q/k/v
    case attentionNorm = "attn_norm->qkv"
    /// v_proj -> o_proj
    case valueOutput = "v->o"
    /// post_attention_layernorm -> gate/up
    case ffnNorm = "ffn_norm->gate_up"
    /// up_proj -> down_proj
    case upDown = "up->down"
}

/// What AWQ did to one block.
public struct AWQBlockReport: Sendable {
    /// Chosen alpha per pair (nil: the pair was not smoothed).
    public var alpha: [AWQPair: Float] = [:]
    /// Output error (mean square) of each pair's inspected module at the chosen alpha and at alpha 0.
    public var loss: [AWQPair: (best: Double, plain: Double)] = [:]
    /// The scale each input's channels were divided by (the folded weights multiply x / s), and
    /// the block's input statistics with the original weights (Gram matrices when the run keeps them).
    public var inputScales: [LinearInput: [Float]] = [:]
    public var statistics: [InputStatistics] = []

    /// The block's input sums of x^2 as the folded weights see them (x / s): importance for
    /// GGUF's importance-weighted rounding.
    public var sums: [ImatrixExport.Sums] {
        statistics.map { statistics in
            let s = inputScales[statistics.input] ?? []
            let sums = statistics.sumSquares.enumerated().map { c, v in s.isEmpty ? v : v / (Double(s[c]) * Double(s[c])) }
            return ImatrixExport.Sums(layer: statistics.layer, input: statistics.input, tokens: statistics.tokens, sumSquares: sums)
        }
    }

    /// GPTQ's factorization for a folded weight multiplying `input` (of block `layer`): its
    /// inputs are x / s, so its Gram matrix is D^-1 G D^-1. nil without a Gram matrix.
    func rescaledFactorization(_ input: LinearInput, layer: Int, options: GPTQOptions, cache: FactorizationCache) throws
        -> (factorization: GPTQ.Factorization, statistics: InputStatistics)? {
        guard let statistics = statistics.first(where: { $0.input == input }), let gram = statistics.gram, let s = inputScales[input] else { return nil }
        let factorization = try cache.factorization(input.rawValue, layer: layer) {
            let n = statistics.columns
            var scaled = gram
            for i in 0..<n { for j in 0..<n { scaled[i * n + j] /= Double(s[i]) * Double(s[j]) } }
            return try GPTQ.factorize(gram: scaled, columns: n, options: options)
        }
        return factorization.map { ($0, statistics) }
    }
}

/// AWQ as pure functions of a block's weights (GGUF layout) and its activations: the scale
/// search per smoothing pair, the fold, and the clipping search. The weights stay fp32; the
/// caller rounds them to the grid (round-to-nearest) or runs GPTQ on them.
public enum AWQ {
    /// Row-major `[rows, columns]` weight rounded group by group to `grid` after clamping each
    /// group to [-maxValue, maxValue] (when given, `[rows, groups]`): the decoded values.
    static func fakeQuantize(_ w: [Float], rows: Int, columns: Int, grid: AffineQuantizer.Options, maxValue: [Float]? = nil) -> [Float] {
        let size = grid.groupSize > 0 ? grid.groupSize : columns, groups = (columns + size - 1) / size
        let maxLevel = Float((1 << grid.bits) - 1)
        var out = w
        var values = [Float](repeating: 0, count: size)
        for r in 0..<rows {
            for g in 0..<groups {
                let c0 = g * size, c1 = min(columns, c0 + size)
                for c in c0..<c1 {
                    var v = w[r * columns + c]
                    if let limit = maxValue?[r * groups + g] { v = min(max(v, -limit), limit) }
                    values[c - c0] = v
                }
                let (scale, zero) = values.withUnsafeBufferPointer { AffineQuantizer.parameters(UnsafeBufferPointer(rebasing: $0[0..<(c1 - c0)]), options: grid) }
                for c in c0..<c1 { out[r * columns + c] = AffineQuantizer.value(values[c - c0], scale: scale, zero: zero, maxLevel: maxLevel) }
            }
        }
        return out
    }

    /// Columns of `w` (`[rows, columns]`) times `s` (`times`) or divided by it.
    static func scaleColumns(_ w: [Float], columns: Int, _ s: [Float], divide: Bool = false) -> [Float] {
        var out = w
        for i in 0..<w.count { out[i] = divide ? w[i] / s[i % columns] : w[i] * s[i % columns] }
        return out
    }

    /// Rows of `w` (`[rows, columns]`) divided by `s`.
    static func divideRows(_ w: [Float], columns: Int, _ s: [Float]) -> [Float] {
        var out = w
        for i in 0..<w.count { out[i] = w[i] / s[i / columns] }
        return out
    }

    /// The candidate scales for `alpha`: mean|x|^alpha (over mean|w|^(1-alpha) with duo scaling),
    /// clamped below at 1e-4 and normalized by sqrt(max * min), as the reference.
    static func scales(activation: [Float], weight: [Float]?, alpha: Float) -> [Float] {
        var s = activation.indices.map { i -> Float in
            let a = powf(max(activation[i], 0), alpha)
            guard let weight else { return max(a, 1e-4) }
            return max(a / max(powf(max(weight[i], 1e-12), 1 - alpha), 1e-12), 1e-4)
        }
        let top = s.max() ?? 1, bottom = s.min() ?? 1
        let norm = (top * bottom).squareRoot()
        for i in s.indices { s[i] /= norm }
        return s
    }

    /// The mean over rows of |w| normalized by each group's largest |w| (AutoAWQ's `w_mean`), per input column.
    static func weightMagnitude(_ weights: [[Float]], columns: Int, groupSize: Int) -> [Float] {
        var sum = [Double](repeating: 0, count: columns)
        var rows = 0
        let size = groupSize > 0 ? groupSize : columns
        for w in weights {
            let n = w.count / columns
            rows += n
            for r in 0..<n {
                for g in stride(from: 0, to: columns, by: size) {
                    let c1 = min(columns, g + size)
                    var top: Float = 0
                    for c in g..<c1 { top = max(top, abs(w[r * columns + c])) }
                    for c in g..<c1 { sum[c] += Double(abs(w[r * columns + c]) / max(top, 1e-12)) }
                }
            }
        }
        return sum.map { Float($0 / Double(max(rows, 1))) }
    }

    /// Searches alpha on the grid: `loss(s)` is the inspected module's output error with the
    /// candidate scales; returns the best scales, alpha and the losses (best, alpha = 0).
    static func search(activation: [Float], weight: [Float]?, options: AWQOptions, loss: ([Float]) throws -> Double) rethrows
        -> (scales: [Float], alpha: Float, best: Double, plain: Double) {
        var best = (scales: [Float](repeating: 1, count: activation.count), alpha: Float(0), loss: Double.infinity)
        var plain = Double.infinity
        for step in 0..<options.scaleGrid {
            let alpha = Float(step) / Float(options.scaleGrid)
            let s = scales(activation: activation, weight: weight, alpha: alpha)
            let l = try loss(s)
            if step == 0 { plain = l }
            if l < best.loss { best = (s, alpha, l) }
        }
        return (best.scales, best.alpha, best.loss, plain)
    }

    /// Per-channel sums over `tokens` rows as means.
    static func mean(_ sums: [Double], tokens: Int) -> [Float] { sums.map { Float($0 / Double(max(tokens, 1))) } }

    /// Y[rows, n] = X[rows, k] W[n, k]^T.
    static func product(_ x: UnsafePointer<Float>, rows: Int, _ w: [Float], n: Int, k: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k), 1, x, Int32(k), w, Int32(k), 0, &y, Int32(n))
        return y
    }

    static func meanSquare(_ a: [Float], _ b: [Float]) -> Double {
        var s = 0.0
        for i in a.indices { let d = Double(a[i] - b[i]); s += d * d }
        return s / Double(max(a.count, 1))
    }

    /// The clipping search for one linear `w` (`[rows, columns]`) on input samples `x`
    /// (`[tokens, columns]`): per row and group the largest |w| shrunk by up to `maxShrink` in
    /// `clipGrid` steps, keeping the limit whose rounded group gives the smallest output error.
    static func clip(_ w: [Float], rows: Int, columns: Int, samples x: [Float], tokens: Int, options: AWQOptions) -> [Float] {
        let size = options.grid.groupSize > 0 ? options.grid.groupSize : columns, groups = (columns + size - 1) / size
        let maxLevel = Float((1 << options.grid.bits) - 1)
        var limits = [Float](repeating: 0, count: rows * groups)
        var errors = [Double](repeating: .infinity, count: rows * groups)
        let steps = Int(Float(options.clipGrid) * options.maxShrink)
        var xg = [Float](repeating: 0, count: tokens * size), delta = [Float](repeating: 0, count: rows * size)
        var values = [Float](repeating: 0, count: size)
        for g in 0..<groups {
            let c0 = g * size, c1 = min(columns, c0 + size), width = c1 - c0
            for t in 0..<tokens { for c in c0..<c1 { xg[t * width + c - c0] = x[t * columns + c] } }
            var top = [Float](repeating: 0, count: rows)
            for r in 0..<rows { for c in c0..<c1 { top[r] = max(top[r], abs(w[r * columns + c])) } }
            for step in 0..<max(steps, 1) {
                let factor = 1 - Float(step) / Float(options.clipGrid)
                for r in 0..<rows {
                    let limit = top[r] * factor
                    for c in c0..<c1 { values[c - c0] = min(max(w[r * columns + c], -limit), limit) }
                    let (scale, zero) = values.withUnsafeBufferPointer { AffineQuantizer.parameters(UnsafeBufferPointer(rebasing: $0[0..<width]), options: options.grid) }
                    for c in c0..<c1 {
                        delta[r * width + c - c0] = w[r * columns + c] - AffineQuantizer.value(values[c - c0], scale: scale, zero: zero, maxLevel: maxLevel)
                    }
                }
                // E[tokens, rows] = Xg[tokens, width] * delta[rows, width]^T
                let e = product(xg, rows: tokens, delta, n: rows, k: width)
                for r in 0..<rows {
                    var sum = 0.0
                    for t in 0..<tokens { let v = Double(e[t * rows + r]); sum += v * v }
                    if sum < errors[r * groups + g] {
                        errors[r * groups + g] = sum
                        limits[r * groups + g] = top[r] * factor
                    }
                }
            }
        }
        return limits
    }

    /// `w` clamped to its limits per row and group.
    static func applyClip(_ w: [Float], rows: Int, columns: Int, limits: [Float], groupSize: Int) -> [Float] {
        let size = groupSize > 0 ? groupSize : columns, groups = (columns + size - 1) / size
        var out = w
        for r in 0..<rows {
            for c in 0..<columns {
                let limit = limits[r * groups + c / size]
                out[r * columns + c] = min(max(w[r * columns + c], -limit), limit)
            }
        }
        return out
    }
}

#if canImport(Glibc)
import Glibc
#endif
