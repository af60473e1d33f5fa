import Dispatch

/// The fast form of `Kernels.gemmNTggml`: C[m, n] (+)= A[m, k] · B[n, k]ᵀ with every element
/// summed in ggml's order (lane l of a 16-float accumulator takes the terms k ≡ l (mod 16) in
/// increasing k as fused multiply-adds, then `GGMLOrder.reduce`), computed in register tiles
/// of 6 rows of A by 4 rows of B as llamafile's tinyBLAS does (its 4 × 6 tile, transposed):
/// 24 accumulators, and each loaded vector feeds four or six products instead of one.
/// Each element's sequence of operations is the reference's, so the results are the same bits
/// whatever the tiling, the blocking and the thread count.
public enum TiledProduct {
    typealias V = SIMD16<Float>

    /// Rows of A per job: sixteen tiles of six.
    static let rowBlock = 96
    /// Bytes of B per job.
    static let columnBytes = 96 * 1024

    /// C[m, n] (row stride `ldc`) = A[m, k] · B[n, k]ᵀ, or C += it with `accumulate`; A and B
    /// have contiguous rows of k floats, k a multiple of 16. Jobs of 96 rows of A by a block of
    /// B's rows (about 96 KB of B, at least 4 rows) run on `threads` workers.
    public static func product(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                        _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, threads: Int) {
        precondition(k % 16 == 0 && k > 0, "ggml's vector order needs rows of whole 16-float vectors")
        guard m > 0, n > 0 else { return }
        let columnBlock = max(4, (columnBytes / (k * 4)) / 4 * 4)
        let rowJobs = (m + rowBlock - 1) / rowBlock, columnJobs = (n + columnBlock - 1) / columnBlock
        let jobs = rowJobs * columnJobs
        nonisolated(unsafe) let (pa, pb, pc) = (a, b, c)
        let run: @Sendable (Int) -> Void = { job in
            let r0 = (job % rowJobs) * rowBlock, j0 = (job / rowJobs) * columnBlock
            block(rows: r0..<min(m, r0 + rowBlock), columns: j0..<min(n, j0 + columnBlock), k, pa, pb, pc, ldc: ldc,
                  accumulate: accumulate)
        }
        let workers = max(1, min(threads, jobs))
        if workers == 1 {
            for job in 0..<jobs { run(job) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for job in stride(from: worker, to: jobs, by: workers) { run(job) }
        }
    }

    /// One job: every 6 × 4 tile of `rows` × `columns`, then the rows and columns left over.
    private static func block(rows: Range<Int>, columns: Range<Int>, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                              _ c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        let fullColumns = columns.lowerBound + (columns.count / 4) * 4
        var i = rows.lowerBound
        while i + 6 <= rows.upperBound {
            var j = columns.lowerBound
            while j < fullColumns {
                tile6x4(a + i * k, b + j * k, k, c + i * ldc + j, ldc: ldc, accumulate: accumulate)
                j += 4
            }
            i += 6
        }
        while i < rows.upperBound {
            var j = columns.lowerBound
            while j < fullColumns {
                tile1x4(a + i * k, b + j * k, k, c + i * ldc + j, accumulate: accumulate)
                j += 4
            }
            i += 1
        }
        for i in rows {
            for j in fullColumns..<columns.upperBound {
                let x = a + i * k, w = b + j * k
                var l = V()
                for base in stride(from: 0, to: k, by: 16) { l = l.addingProduct(load(x + base), load(w + base)) }
                store(l, c + i * ldc + j, accumulate)
            }
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    private static func store(_ l: V, _ c: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
        if accumulate { c.pointee += GGMLOrder.reduce(l) } else { c.pointee = GGMLOrder.reduce(l) }
    }

    /// Six rows of A (from `a`) against four rows of B (from `b`) into C's 6 × 4 corner at `c`.
    @inline(__always)
    private static func tile6x4(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int, _ c: UnsafeMutablePointer<Float>,
                                ldc: Int, accumulate: Bool) {
        var c00 = V(), c01 = V(), c02 = V(), c03 = V(), c10 = V(), c11 = V(), c12 = V(), c13 = V()
        var c20 = V(), c21 = V(), c22 = V(), c23 = V(), c30 = V(), c31 = V(), c32 = V(), c33 = V()
        var c40 = V(), c41 = V(), c42 = V(), c43 = V(), c50 = V(), c51 = V(), c52 = V(), c53 = V()
        let a1 = a + k, a2 = a1 + k, a3 = a2 + k, a4 = a3 + k, a5 = a4 + k
        let b1 = b + k, b2 = b1 + k, b3 = b2 + k
        var l = 0
        while l < k {
            let w0 = load(b + l), w1 = load(b1 + l), w2 = load(b2 + l), w3 = load(b3 + l)
            var x = load(a + l)
            c00 = c00.addingProduct(x, w0); c01 = c01.addingProduct(x, w1); c02 = c02.addingProduct(x, w2); c03 = c03.addingProduct(x, w3)
            x = load(a1 + l)
            c10 = c10.addingProduct(x, w0); c11 = c11.addingProduct(x, w1); c12 = c12.addingProduct(x, w2); c13 = c13.addingProduct(x, w3)
            x = load(a2 + l)
            c20 = c20.addingProduct(x, w0); c21 = c21.addingProduct(x, w1); c22 = c22.addingProduct(x, w2); c23 = c23.addingProduct(x, w3)
            x = load(a3 + l)
            c30 = c30.addingProduct(x, w0); c31 = c31.addingProduct(x, w1); c32 = c32.addingProduct(x, w2); c33 = c33.addingProduct(x, w3)
            x = load(a4 + l)
            c40 = c40.addingProduct(x, w0); c41 = c41.addingProduct(x, w1); c42 = c42.addingProduct(x, w2); c43 = c43.addingProduct(x, w3)
            x = load(a5 + l)
            c50 = c50.addingProduct(x, w0); c51 = c51.addingProduct(x, w1); c52 = c52.addingProduct(x, w2); c53 = c53.addingProduct(x, w3)
            l += 16
        }
        storeRow(c, c00, c01, c02, c03, accumulate)
        storeRow(c + ldc, c10, c11, c12, c13, accumulate)
        storeRow(c + 2 * ldc, c20, c21, c22, c23, accumulate)
        storeRow(c + 3 * ldc, c30, c31, c32, c33, accumulate)
        storeRow(c + 4 * ldc, c40, c41, c42, c43, accumulate)
        storeRow(c + 5 * ldc, c50, c51, c52, c53, accumulate)
    }

    @inline(__always)
    private static func storeRow(_ o: UnsafeMutablePointer<Float>, _ t0: V, _ t1: V, _ t2: V, _ t3: V, _ accumulate: Bool) {
        store(t0, o, accumulate); store(t1, o + 1, accumulate); store(t2, o + 2, accumulate); store(t3, o + 3, accumulate)
    }

    /// One row of A against four rows of B.
    @inline(__always)
    private static func tile1x4(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int, _ c: UnsafeMutablePointer<Float>,
                                accumulate: Bool) {
        var c0 = V(), c1 = V(), c2 = V(), c3 = V()
        let b1 = b + k, b2 = b1 + k, b3 = b2 + k
        var l = 0
        while l < k {
            let x = load(a + l)
            c0 = c0.addingProduct(x, load(b + l)); c1 = c1.addingProduct(x, load(b1 + l))
            c2 = c2.addingProduct(x, load(b2 + l)); c3 = c3.addingProduct(x, load(b3 + l))
            l += 16
        }
        storeRow(c, c0, c1, c2, c3, accumulate)
    }
}
