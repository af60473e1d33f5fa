import CBLAS
import Dispatch
import QuantaCore
import QuantaModel

/// The distinct inputs of a decoder's linear layers: q/k/v share one, gate/up share one.
public enum LinearInput: String, Sendable, CaseIterable {
    case attentionQKV = "attn_qkv", attentionOutput = "attn_output", ffnGateUp = "ffn_gate_up", ffnDown = "ffn_down", output

    /// The weights that multiply this input.
    public var roles: [TensorRole] {
        switch self {
        case .attentionQKV: [.q, .k, .v]
        case .attentionOutput: [.o]
        case .ffnGateUp: [.gate, .up]
        case .ffnDown: [.down]
        case .output: [.output]
        }
    }

    /// The input a linear role multiplies.
    public static func feeding(_ role: LinearRole) -> LinearInput? {
        switch role {
        case .q, .k, .v: .attentionQKV
        case .o: .attentionOutput
        case .gate, .up: .ffnGateUp
        case .down: .ffnDown
        case .output: .output
        }
    }

    /// The input an observed linear role reports (nil for the roles that repeat a shared input).
    init?(observed role: LinearRole) {
        switch role {
        case .q: self = .attentionQKV
        case .o: self = .attentionOutput
        case .gate: self = .ffnGateUp
        case .down: self = .ffnDown
        case .output: self = .output
        case .k, .v, .up: return nil
        }
    }

    /// Input width for `config`.
    public func columns(_ config: ModelConfig) -> Int {
        switch self {
        case .attentionQKV, .ffnGateUp, .output: config.hiddenSize
        case .attentionOutput: config.qDim
        case .ffnDown: config.intermediateSize
        }
    }
}

/// Which second-order statistics to keep.
public enum HessianMode: String, Sendable, CaseIterable {
    /// The Gram matrix sum x x^T (GPTQ's Hessian up to a factor 2/N).
    case full
    /// Only its diagonal (the sum of x^2, always kept).
    case diag
    case none
}

/// What the inputs of one linear layer looked like over the calibration tokens: per input
/// channel the sum of x^2, the sum of |x| and the largest |x|, and optionally the Gram matrix
/// sum x x^T. Sums are float64; each batch's Gram is an sgemm in float32 over the batch's rows
/// (a few thousand at most), added into float64, so the error stays at float32's level per
/// batch and does not grow with the token count.
public final class InputStatistics: @unchecked Sendable {
    /// "blk.3.ffn_down", or "output" for the head.
    public let name: String
    public let layer: Int?
    public let input: LinearInput
    public let columns: Int
    public private(set) var tokens = 0
    public private(set) var sumSquares: [Double]
    public private(set) var sumAbs: [Double]
    public private(set) var maxAbs: [Float]
    /// Row-major `[columns, columns]`, symmetric; nil unless the mode is `.full`.
    public private(set) var gram: [Double]?
    private var batchGram: [Float]

    public init(layer: Int?, input: LinearInput, columns: Int, hessian: HessianMode) {
        self.layer = layer
        self.input = input
        self.name = layer.map { "blk.\($0).\(input.rawValue)" } ?? input.rawValue
        self.columns = columns
        sumSquares = Array(repeating: 0, count: columns)
        sumAbs = Array(repeating: 0, count: columns)
        maxAbs = Array(repeating: 0, count: columns)
        gram = hessian == .full ? Array(repeating: 0, count: columns * columns) : nil
        batchGram = hessian == .full ? Array(repeating: 0, count: columns * columns) : []
    }

    /// Adds `rows` rows of `columns` values. Channels are split across `threads`; each channel's
    /// sums run over the rows in order, so the result does not depend on the thread count.
    public func add(_ x: UnsafePointer<Float>, rows: Int, threads: Int) {
        tokens += rows
        let n = columns
        let workers = max(1, min(threads, n / 64))
        let span = (n + workers - 1) / workers
        nonisolated(unsafe) let (sq, ab, mx) = (sumSquares.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                               sumAbs.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                               maxAbs.withUnsafeMutableBufferPointer { $0.baseAddress! })
        nonisolated(unsafe) let source = x
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = w * span, hi = min(n, lo + span)
            guard lo < hi else { return }
            for r in 0..<rows {
                let row = source + r * n
                for j in lo..<hi {
                    let v = row[j], a = abs(v)
                    sq[j] += Double(v) * Double(v)
                    ab[j] += Double(a)
                    if a > mx[j] { mx[j] = a }
                }
            }
        }
        guard gram != nil else { return }
        // The upper triangle in row panels of `panel` rows, one sgemm each: the panels are the
        // same whatever the thread count, so every element comes out of the same product.
        let panel = 64, panels = (n + panel - 1) / panel
        nonisolated(unsafe) let g = batchGram.withUnsafeMutableBufferPointer { $0.baseAddress! }
        nonisolated(unsafe) let total = gram!.withUnsafeMutableBufferPointer { $0.baseAddress! }
        DispatchQueue.concurrentPerform(iterations: max(1, min(threads, panels))) { w in
            for p in stride(from: w, to: panels, by: max(1, min(threads, panels))) {
                let i0 = p * panel, i1 = min(n, i0 + panel)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(i1 - i0), Int32(n - i0), Int32(rows), 1,
                            source + i0, Int32(n), source + i0, Int32(n), 0, g + i0 * n + i0, Int32(n))
                for i in i0..<i1 {
                    for j in i..<n { total[i * n + j] += Double(g[i * n + j]) }
                }
            }
        }
    }

    /// Copies the upper triangle of the Gram matrix to the lower one (call once, after the last `add`).
    public func finish() {
        guard gram != nil else { return }
        let n = columns
        gram!.withUnsafeMutableBufferPointer { g in
            for i in 0..<n {
                for j in 0..<i { g[i * n + j] = g[j * n + i] }
            }
        }
    }

    /// Drops the per-batch working memory.
    public func releaseScratch() { batchGram = [] }
}
