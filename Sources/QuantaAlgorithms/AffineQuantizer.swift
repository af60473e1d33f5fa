import QuantaCore

/// GPTQ's integer grid (the reference's `Quantizer`): per output row and group of input columns
/// a scale and a zero point, q = clamp(round(w / scale) + zero, 0, 2^bits - 1), w' = scale (q - zero).
/// Symmetric grids put the zero in the middle. Parameters are fitted from the current weights
/// when a group's first column is reached (or once, up front, with static groups).
public struct AffineQuantizer: GPTQColumnQuantizer {
    public struct Options: Sendable, Equatable {
        public var bits = 4
        /// Columns per group; -1: one group per row (per channel).
        public var groupSize = 128
        public var symmetric = false
        /// Fit every group's parameters from the original weights before GPTQ starts.
        public var staticGroups = false
        /// Grid search of the clipping range (GPTQModel's `mse`: norm 2.4, 100 steps, shrink to 0.2).
        public var mse = false

        public init() {}
    }

    public let options: Options
    public let rows: Int
    public let columns: Int
    /// Per group, per row: scale and zero point.
    public private(set) var scales: [Float]
    public private(set) var zeros: [Float]
    /// Integer levels, row-major `[rows, columns]`.
    public private(set) var levels: [Int32]
    /// Each column's group (GPTQ's `g_idx`): consecutive columns in processing order share one,
    /// so with act order (and dynamic groups) a group's columns are scattered.
    public private(set) var groupIndex: [Int32]
    private var members: [[Int]]
    private var fitted: [Bool]

    public var maxLevel: Float { Float((1 << options.bits) - 1) }
    public var groupSize: Int { options.groupSize > 0 ? options.groupSize : columns }
    public var groups: Int { (columns + groupSize - 1) / groupSize }

    public init(options: Options, rows: Int, columns: Int, original: UnsafeBufferPointer<Float>? = nil) throws {
        guard (2...8).contains(options.bits) else { throw QuantaError(.invalidArgument, "--bits", "\(options.bits) is not in 2...8") }
        guard options.groupSize == -1 || options.groupSize > 0 else {
            throw QuantaError(.invalidArgument, "--group-size", "\(options.groupSize) must be positive or -1")
        }
        self.options = options
        self.rows = rows
        self.columns = columns
        let groups = (columns + (options.groupSize > 0 ? options.groupSize : columns) - 1) / (options.groupSize > 0 ? options.groupSize : columns)
        scales = Array(repeating: 0, count: groups * rows)
        zeros = Array(repeating: 0, count: groups * rows)
        levels = Array(repeating: 0, count: rows * columns)
        let size = options.groupSize > 0 ? options.groupSize : columns
        groupIndex = (0..<columns).map { Int32($0 / size) }
        members = (0..<groups).map { Array(($0 * size)..<min(columns, ($0 + 1) * size)) }
        fitted = Array(repeating: false, count: groups)
        if options.staticGroups {
            guard let original, original.count == rows * columns else {
                throw QuantaError(.invalidArgument, "static groups", "need the original weights")
            }
            var values = [Float](repeating: 0, count: groupSize)
            for g in 0..<groups {
                let c0 = g * groupSize, c1 = min(columns, c0 + groupSize)
                for r in 0..<rows {
                    for c in c0..<c1 { values[c - c0] = original[r * columns + c] }
                    fit(group: g, row: r, values[0..<(c1 - c0)])
                }
                fitted[g] = true
            }
        }
    }

    /// Dynamic groups follow the processing order; static groups stay contiguous in the original order.
    public mutating func begin(order: [Int]) {
        guard !options.staticGroups else { return }
        members = stride(from: 0, to: columns, by: groupSize).map { Array(order[$0..<min(columns, $0 + groupSize)]) }
        for (g, group) in members.enumerated() { for j in group { groupIndex[j] = Int32(g) } }
    }

    public mutating func prepare(column j: Int, weights: (Int) -> UnsafePointer<Float>) {
        let g = Int(groupIndex[j])
        guard !fitted[g] else { return }
        let cols = members[g].map(weights)
        var values = [Float](repeating: 0, count: cols.count)
        for r in 0..<rows {
            for (k, col) in cols.enumerated() { values[k] = col[r] }
            fit(group: g, row: r, values[...])
        }
        fitted[g] = true
    }

    public mutating func quantize(column j: Int, _ w: UnsafePointer<Float>, into q: UnsafeMutablePointer<Float>) {
        let g = Int(groupIndex[j])
        for r in 0..<rows {
            let scale = scales[g * rows + r], zero = zeros[g * rows + r]
            let level = Swift.min(Swift.max((w[r] / scale).rounded(.toNearestOrEven) + zero, 0), maxLevel)
            levels[r * columns + j] = Int32(level)
            q[r] = scale * (level - zero)
        }
    }

    /// The reference's `find_params` for one row of one group, with GPTQModel's `mse` search.
    mutating func fit(group g: Int, row r: Int, _ x: ArraySlice<Float>) {
        let (scale, zero) = x.withUnsafeBufferPointer { AffineQuantizer.parameters($0, options: options) }
        scales[g * rows + r] = scale
        zeros[g * rows + r] = zero
    }

    /// Scale and zero point of one group's values `x` (the reference's `find_params`: the range
    /// always holds 0; GPTQModel's `mse` search when asked).
    public static func parameters(_ x: UnsafeBufferPointer<Float>, options: Options) -> (scale: Float, zero: Float) {
        let maxLevel = Float((1 << options.bits) - 1)
        var xmin: Float = 0, xmax: Float = 0
        for i in 0..<x.count {
            xmin = Swift.min(xmin, x[i])
            xmax = Swift.max(xmax, x[i])
        }
        if options.symmetric {
            xmax = Swift.max(abs(xmin), xmax)
            if xmin < 0 { xmin = -xmax }
        }
        if xmin == 0 && xmax == 0 { xmin = -1; xmax = 1 }
        var scale = (xmax - xmin) / maxLevel
        var zero = options.symmetric ? (maxLevel + 1) / 2 : (-xmin / scale).rounded(.toNearestOrEven)
        if options.mse {
            var best = Float.infinity
            for i in 0..<80 {
                let p = 1 - Float(i) / 100
                let lo = p * xmin, hi = p * xmax
                let s = (hi - lo) / maxLevel
                let z = options.symmetric ? zero : (-lo / s).rounded(.toNearestOrEven)
                var error: Float = 0
                for k in 0..<x.count {
                    let v = x[k]
                    let level = Swift.min(Swift.max((v / s).rounded(.toNearestOrEven) + z, 0), maxLevel)
                    error += pow(abs(s * (level - z) - v), 2.4)
                }
                if error < best { best = error; scale = s; zero = z }
            }
        }
        return (scale, zero)
    }

    /// `x` rounded to its own group grid and decoded: scale * (level - zero).
    @inline(__always)
    public static func value(_ x: Float, scale: Float, zero: Float, maxLevel: Float) -> Float {
        scale * (Swift.min(Swift.max((x / scale).rounded(.toNearestOrEven) + zero, 0), maxLevel) - zero)
    }
}

#if canImport(Glibc)
import Glibc
#endif
