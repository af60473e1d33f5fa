import CBLAS
import QuantaCore

/// Rounds GPTQ's columns: given the current (error-updated) weights, it fits its parameters
/// when a group starts and rounds one column at a time.
public protocol GPTQColumnQuantizer {
    /// The processing order (original column indices), before the first column.
    mutating func begin(order: [Int])
    /// Column `j` (original index) is about to be rounded; `weights(c)` is column c's values as
    /// of the last lazy batch update (the reference fits groups from those). Fit the group's
    /// parameters here when `j` starts one.
    mutating func prepare(column j: Int, weights: (Int) -> UnsafePointer<Float>)
    /// Rounds column `j`'s `rows` values `w` into `q` (the values the stored format decodes to).
    mutating func quantize(column j: Int, _ w: UnsafePointer<Float>, into q: UnsafeMutablePointer<Float>)
}

/// GPTQ's solver options.
public struct GPTQOptions: Sendable, Equatable {
    /// Dampening added to the Hessian's diagonal, as a fraction of its mean diagonal.
    public var damp: Double = 0.01
    /// Added to `damp` each time the Cholesky factorization fails (GPTQModel's auto increment).
    public var dampIncrement: Double = 0.0025
    /// Columns per lazy batch update.
    public var blockSize = 128
    /// Process columns by decreasing Hessian diagonal (desc_act).
    public var actOrder = false

    public init() {}
}

/// What one GPTQ solve did.
public struct GPTQReport: Sendable {
    /// Sum over rows and columns of (w - q)^2 / [H^-1]_jj^2, halved: GPTQ's own loss.
    public let loss: Double
    /// The dampening the factorization finally took (larger than asked when it failed first).
    public let damp: Double
    /// Columns whose Hessian diagonal was zero (never seen by the calibration data).
    public let deadColumns: Int
    /// Processing order (original column indices).
    public let order: [Int]
}

/// GPTQ (Frantar et al. 2022, the IST-DASLab reference): columns rounded one at a time, each
/// rounding error spread over the columns not yet rounded through the inverse Hessian's
/// Cholesky factor, with lazy batch updates on BLAS.
public enum GPTQ {
    /// Quantizes `weight` (`rows x columns`, row-major) against `gram` (sum x x^T over the
    /// calibration inputs, `columns x columns`, row-major; any positive scale). Returns the
    /// dequantized weight (row-major) and the report.
    /// The part of a solve that depends only on the Gram matrix: dead columns, the processing
    /// order and the inverse Hessian's upper Cholesky factor. Rows are independent given it, so a
    /// matrix can be solved in row slices that share one factorization.
    public struct Factorization: Sendable {
        public let columns: Int
        /// The Gram matrix's diagonal (sum of x^2 per input column).
        public let diagonal: [Double]
        public let dead: [Int]
        public let order: [Int]
        /// Row-major upper factor U of the permuted, damped inverse Hessian (U^T U = H^-1).
        public let U: [Double]
        public let damp: Double
        public let options: GPTQOptions
    }

    /// Factorizes `gram` (sum x x^T, `columns x columns`, row-major; any positive scale).
    public static func factorize(gram: [Double], columns n: Int, options: GPTQOptions) throws -> Factorization {
        guard n > 0, gram.count == n * n else { throw QuantaError(.invalidArgument, "GPTQ", "Gram \(gram.count) does not fit \(n) columns") }
        var H = gram
        let diagonal = (0..<n).map { gram[$0 * n + $0] }
        var dead: [Int] = []
        for j in 0..<n where H[j * n + j] == 0 {
            H[j * n + j] = 1
            dead.append(j)
        }
        let order: [Int] = options.actOrder
            ? (0..<n).sorted { H[$0 * n + $0] != H[$1 * n + $1] ? H[$0 * n + $0] > H[$1 * n + $1] : $0 < $1 } : Array(0..<n)
        var P = [Double](repeating: 0, count: n * n)
        for a in 0..<n { for b in 0..<n { P[a * n + b] = H[order[a] * n + order[b]] } }
        let (U, damp) = try inverseCholesky(P, n, options)
        return Factorization(columns: n, diagonal: diagonal, dead: dead, order: order, U: U, damp: damp, options: options)
    }

    /// Quantizes `weight` (`rows x columns`, row-major) against `gram`. Returns the dequantized
    /// weight (row-major) and the report.
    public static func solve<Q: GPTQColumnQuantizer>(weight: UnsafeBufferPointer<Float>, rows: Int, columns n: Int, gram: [Double],
                                                     options: GPTQOptions, quantizer: inout Q) throws -> (weight: [Float], report: GPTQReport) {
        try solve(weight: weight, rows: rows, factorization: factorize(gram: gram, columns: n, options: options), quantizer: &quantizer)
    }

    /// Quantizes `weight` (`rows x factorization.columns`, row-major) with a shared factorization.
    public static func solve<Q: GPTQColumnQuantizer>(weight: UnsafeBufferPointer<Float>, rows: Int, factorization f: Factorization,
                                                     quantizer: inout Q) throws -> (weight: [Float], report: GPTQReport) {
        let n = f.columns, order = f.order, U = f.U, damp = f.damp, options = f.options
        guard rows > 0, weight.count == rows * n else {
            throw QuantaError(.invalidArgument, "GPTQ", "weight \(weight.count) does not fit \(rows) x \(n)")
        }
        // Column-major working copy: column j's rows are contiguous.
        var W = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows { for j in 0..<n { W[j * rows + r] = weight[r * n + j] } }
        for j in f.dead { for r in 0..<rows { W[j * rows + r] = 0 } }
        let dead = f.dead.count
        var loss = 0.0
        var Q = [Float](repeating: 0, count: rows * n)
        let err = UnsafeMutablePointer<Float>.allocate(capacity: options.blockSize * rows)
        defer { err.deallocate() }
        quantizer.begin(order: order)
        let block = UnsafeMutablePointer<Float>.allocate(capacity: options.blockSize * rows)
        defer { block.deallocate() }
        let identity = order.elementsEqual(0..<n)
        try W.withUnsafeMutableBufferPointer { wb in
            let w = wb.baseAddress!
            let column = { (j: Int) -> UnsafePointer<Float> in UnsafePointer(w + j * rows) }
            // Column p of the permuted problem is original column order[p].
            let permuted = { (p: Int) -> UnsafeMutablePointer<Float> in w + order[p] * rows }
            for i1 in stride(from: 0, to: n, by: options.blockSize) {
                let i2 = min(n, i1 + options.blockSize)
                for i in i1..<i2 { (block + (i - i1) * rows).update(from: permuted(i), count: rows) }
                for i in i1..<i2 {
                    let j = order[i]
                    quantizer.prepare(column: j, weights: column)
                    let x = block + (i - i1) * rows
                    try Q.withUnsafeMutableBufferPointer { qb in
                        let q = qb.baseAddress! + j * rows
                        quantizer.quantize(column: j, x, into: q)
                        let d = Float(U[i * n + i])
                        guard d > 0, d.isFinite else { throw QuantaError(.invalidArgument, "GPTQ", "inverse Hessian diagonal \(d) at column \(j)") }
                        let e = err + (i - i1) * rows
                        for r in 0..<rows {
                            let delta = x[r] - q[r]
                            loss += Double(delta * delta) / Double(d * d)
                            e[r] = delta / d
                        }
                        for k in (i + 1)..<i2 {
                            let u = Float(U[i * n + k])
                            if u == 0 { continue }
                            let target = block + (k - i1) * rows
                            for r in 0..<rows { target[r] -= e[r] * u }
                        }
                    }
                }
                guard i2 < n else { continue }
                // W[:, i2...] -= Err (rows x count) * U[i1..<i2, i2...]: one product for the later columns.
                let count = i2 - i1
                var u = [Float](repeating: 0, count: count * (n - i2))
                for a in 0..<count { for b in i2..<n { u[a * (n - i2) + (b - i2)] = Float(U[(i1 + a) * n + b]) } }
                // rest (later columns x rows) -= u^T (rest x count) * err (count x rows); in the
                // natural order the later columns are already adjacent in W, else gathered first.
                let rest = n - i2
                if identity {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rest), Int32(rows), Int32(count), -1,
                                u, Int32(rest), err, Int32(rows), 1, w + i2 * rows, Int32(rows))
                    continue
                }
                let gathered = UnsafeMutablePointer<Float>.allocate(capacity: rest * rows)
                defer { gathered.deallocate() }
                for b in i2..<n { (gathered + (b - i2) * rows).update(from: permuted(b), count: rows) }
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rest), Int32(rows), Int32(count), -1,
                            u, Int32(rest), err, Int32(rows), 1, gathered, Int32(rows))
                for b in i2..<n { permuted(b).update(from: gathered + (b - i2) * rows, count: rows) }
            }
        }
        var out = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows { for j in 0..<n { out[r * n + j] = Q[j * rows + r] } }
        return (out, GPTQReport(loss: loss / 2, damp: damp, deadColumns: dead, order: order))
    }

    /// The upper Cholesky factor U of (H + damp * mean(diag) * I)^-1 (row-major, U^T U = H^-1),
    /// raising the dampening until the factorization succeeds.
    static func inverseCholesky(_ H: [Double], _ n: Int, _ options: GPTQOptions) throws -> ([Double], Double) {
        var mean = 0.0
        for j in 0..<n { mean += H[j * n + j] }
        mean /= Double(n)
        var damp = options.damp
        for _ in 0..<1000 {
            var A = H
            for j in 0..<n { A[j * n + j] += damp * mean }
            // Row-major symmetric A read as column-major: 'L' there is the row-major upper triangle.
            if LAPACKE_dpotrf(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), &A, Int32(n)) == 0,
               LAPACKE_dpotri(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), &A, Int32(n)) == 0 {
                // The inverse is in the column-major lower triangle = row-major upper; mirror it.
                for i in 0..<n { for j in 0..<i { A[i * n + j] = A[j * n + i] } }
                if LAPACKE_dpotrf(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), &A, Int32(n)) == 0 {
                    // Column-major lower L (H^-1 = L L^T) is row-major upper U = L^T; clear below the diagonal.
                    for i in 0..<n { for j in 0..<i { A[i * n + j] = 0 } }
                    return (A, damp)
                }
            }
            damp += options.dampIncrement
        }
        throw QuantaError(.invalidArgument, "GPTQ", "the Hessian stays singular up to damp \(damp)")
    }
}

/// Factorizations of one layer's inputs, reused by the weights that share an input (q/k/v and
/// gate/up multiply the same activations); entries of earlier layers are dropped.
public final class FactorizationCache: @unchecked Sendable {
    private var layer: Int?
    private var entries: [String: GPTQ.Factorization] = [:]
    /// The largest dampening any factorization made so far took.
    public private(set) var maxDamp: Double?

    public init() {}

    /// The factorization for input `key` of `layer`, made by `make` the first time.
    public func factorization(_ key: String, layer: Int?, _ make: () throws -> GPTQ.Factorization?) rethrows -> GPTQ.Factorization? {
        if layer != self.layer {
            entries.removeAll()
            self.layer = layer
        }
        if let known = entries[key] { return known }
        let made = try make()
        entries[key] = made
        if let made { maxDamp = max(maxDamp ?? made.damp, made.damp) }
        return made
    }
}
