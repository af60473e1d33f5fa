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
        case .attentionQKV: [.q, .k, .v, .qkv]
        case .attentionOutput: [.o]
        case .ffnGateUp: [.gate, .up, .gateUp]
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
    /// Wall seconds spent in `add` (sums and Gram matrix), for stage timings.
    public private(set) var seconds = 0.0
    public private(set) var sumSquares: [Double]
    public private(set) var sumAbs: [Double]
    public private(set) var maxAbs: [Float]
    /// Row-major `[columns, columns]`, symmetric; nil unless the mode is `.full`.
    public private(set) var gram: [Double]?
    /// llama-imatrix's own sums of x^2 when `imatrixLength` is set: float, each square rounded
    /// to float and added in the order its micro-batches hold the rows (see `add`).
    public private(set) var imatrixSums: [Float]?
    /// The sequence length of the rows `add` receives (whole sequences, in order), which turns on
    /// `imatrixSums`; nil: off.
    public var imatrixLength: Int? {
        didSet { imatrixSums = imatrixLength.map { _ in [Float](repeating: 0, count: columns) } }
    }
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
        let start = monotonicSeconds()
        defer { seconds += monotonicSeconds() - start }
        tokens += rows
        let n = columns
        if let length = imatrixLength { addImatrixSums(x, rows: rows, length: length) }
        // Splitting narrow inputs costs more than it saves (256-768 columns: 0.47 ns per element on one thread, 0.8-1.1 on two).
        let workers = max(1, min(threads, n / 2048))
        let span = (n + workers - 1) / workers
        nonisolated(unsafe) let (sq, ab, mx) = (sumSquares.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                               sumAbs.withUnsafeMutableBufferPointer { $0.baseAddress! },
                                               maxAbs.withUnsafeMutableBufferPointer { $0.baseAddress! })
        nonisolated(unsafe) let source = x
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = w * span, hi = min(n, lo + span)
            guard lo < hi else { return }
            let vectorEnd = lo + (hi - lo) / 4 * 4
            for r in 0..<rows {
                let row = source + r * n
                var j = lo
                while j < vectorEnd {
                    let x = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD4<Float>.self)
                    let a = unsafeBitCast(unsafeBitCast(x, to: SIMD4<UInt32>.self) & SIMD4(repeating: 0x7fff_ffff), to: SIMD4<Float>.self)
                    let v = SIMD4<Double>(x), w = SIMD4<Double>(a)
                    UnsafeMutableRawPointer(sq + j).storeBytes(of: UnsafeRawPointer(sq + j).loadUnaligned(as: SIMD4<Double>.self) + v * v,
                                                               as: SIMD4<Double>.self)
                    UnsafeMutableRawPointer(ab + j).storeBytes(of: UnsafeRawPointer(ab + j).loadUnaligned(as: SIMD4<Double>.self) + w,
                                                               as: SIMD4<Double>.self)
                    let m = UnsafeRawPointer(mx + j).loadUnaligned(as: SIMD4<Float>.self)
                    UnsafeMutableRawPointer(mx + j).storeBytes(of: m.replacing(with: a, where: a .> m), as: SIMD4<Float>.self)
                    j += 4
                }
                for j in vectorEnd..<hi {
                    let v = row[j], a = abs(v)
                    sq[j] += Double(v) * Double(v)
                    ab[j] += Double(a)
                    if a > mx[j] { mx[j] = a }
                }
            }
        }
        guard gram != nil else { return }
        // The upper triangle in two fixed parts of about equal work, whatever the thread count:
        // rows [0, a) (ssyrk on the corner, sgemm right of it) and rows [a, n) (ssyrk), so every
        // element comes out of the same product at any thread count. ssyrk runs at 71-85
        // GFLOP/s per core here against 51-73 for 64-row sgemm panels (n = 256, 768; 2048 rows).
        let a = Swift.min(n, Swift.max(16, Int((Double(n) * (1 - 0.5.squareRoot()) / 16).rounded()) * 16))
        nonisolated(unsafe) let g = batchGram.withUnsafeMutableBufferPointer { $0.baseAddress! }
        nonisolated(unsafe) let total = gram!.withUnsafeMutableBufferPointer { $0.baseAddress! }
        let parts = a < n ? 2 : 1
        DispatchQueue.concurrentPerform(iterations: Swift.min(Swift.max(1, threads), parts)) { w in
            for part in stride(from: w, to: parts, by: Swift.min(Swift.max(1, threads), parts)) {
                let (i0, i1) = part == 0 ? (0, a) : (a, n)
                cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(i1 - i0), Int32(rows), 1, source + i0, Int32(n), 0, g + i0 * n + i0, Int32(n))
                if part == 0 && a < n {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(a), Int32(n - a), Int32(rows), 1,
                                source, Int32(n), source + a, Int32(n), 0, g + a, Int32(n))
                }
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

    /// llama-imatrix (`n_batch` 2048, `n_ubatch` 512) decodes the B = rows / length sequences of a
    /// batch in micro-batches of 512 / B positions of every sequence (`split_equal`): micro-batch u
    /// holds positions [u p, (u + 1) p) of sequence 0, then of sequence 1, and so on. Its float
    /// sums add the squares in that order. Batches that do not split evenly keep the row order.
    private func addImatrixSums(_ x: UnsafePointer<Float>, rows: Int, length: Int) {
        let n = columns, sequences = rows / length
        var per = length
        if sequences > 0, rows % length == 0, 512 % sequences == 0 {
            per = min(length, 512 / sequences)
            if length % per != 0 { per = length }
        }
        imatrixSums!.withUnsafeMutableBufferPointer { sums in
            let out = sums.baseAddress!
            func add(_ row: Int) {
                let r = x + row * n
                for j in 0..<n { out[j] += r[j] * r[j] }
            }
            guard rows % length == 0, per < length else {
                for row in 0..<rows { add(row) }
                return
            }
            for u in 0..<(length / per) {
                for s in 0..<sequences {
                    for t in (u * per)..<((u + 1) * per) { add(s * length + t) }
                }
            }
        }
    }
}
