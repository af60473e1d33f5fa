import CBLAS
import Dispatch

// Dense fp32 building blocks of the forward pass. Matrix products go to OpenBLAS; the rest are
// plain loops over contiguous rows.

enum Kernels {
    /// Online cores.
    static let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// C[m, n] (ldc) = A[m, k] (lda) · B[n, k]ᵀ (ldb) (+ C when `accumulate`), all row-major.
    /// With `split`, the rows of A and C are divided among the cores, each part on
    /// single-threaded BLAS (every output element is computed exactly as without the split).
    static func gemmNT(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool = false, alpha: Float = 1, split: Bool = false) {
        let parts = split && m >= 64 * cores ? cores : 1
        if parts == 1 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                        accumulate ? 1 : 0, c, Int32(ldc))
            return
        }
        nonisolated(unsafe) let (pa, pb, pc) = (a, b, c)
        let rows = (m + parts - 1) / parts
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let r0 = part * rows, r1 = min(m, r0 + rows)
            guard r1 > r0 else { return }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r1 - r0), Int32(n), Int32(k), alpha, pa + r0 * lda, Int32(lda),
                        pb, Int32(ldb), accumulate ? 1 : 0, pc + r0 * ldc, Int32(ldc))
        }
    }

    /// C[m, n] = A[m, k] · B[n, k]ᵀ (row-major, contiguous rows) summed in the order of ggml's CPU
    /// f32 products on 16-float vectors (llamafile's tinyBLAS with AVX-512): for each element,
    /// lane l takes the terms k ≡ l (mod 16) in increasing k as fused multiply-adds, then the
    /// lanes reduce as `_mm512_reduce_add_ps` (halves, quarters, then (0+2)+(1+3)). Rows are split
    /// across cores; `k` must be a multiple of 16.
    static func gemmNTggml(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           _ c: UnsafeMutablePointer<Float>) {
        precondition(k % 16 == 0, "ggml's vector order needs rows of whole 16-float vectors")
        nonisolated(unsafe) let (pa, pb, pc) = (a, b, c)
        let parts = min(cores, m), rows = (m + parts - 1) / parts
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            var lanes = [Float](repeating: 0, count: 16)
            lanes.withUnsafeMutableBufferPointer { lane in
                let l = lane.baseAddress!
                for i in (part * rows)..<min(m, (part + 1) * rows) {
                    let x = pa + i * k
                    for j in 0..<n {
                        let w = pb + j * k
                        for t in 0..<16 { l[t] = 0 }
                        for base in stride(from: 0, to: k, by: 16) {
                            for t in 0..<16 { l[t] = l[t].addingProduct(x[base + t], w[base + t]) }
                        }
                        let h0 = l[0] + l[8], h1 = l[1] + l[9], h2 = l[2] + l[10], h3 = l[3] + l[11]
                        let h4 = l[4] + l[12], h5 = l[5] + l[13], h6 = l[6] + l[14], h7 = l[7] + l[15]
                        let q0 = h0 + h4, q1 = h1 + h5, q2 = h2 + h6, q3 = h3 + h7
                        pc[i * n + j] = (q0 + q2) + (q1 + q3)
                    }
                }
            }
        }
    }

    /// C[m, n] = A[m, k] · B[k, n], row-major with leading dimensions.
    static func gemmNN(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb),
                    0, c, Int32(ldc))
    }

    /// out[r] = x[r] / sqrt(mean(x[r]²) + eps) * weight, for `rows` rows of `n`.
    static func rmsNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                        rows: Int, n: Int, eps: Float) {
        for r in 0..<rows {
            let xr = x + r * n, o = out + r * n
            var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
            var i = 0
            while i + 4 <= n {
                s0 += xr[i] * xr[i]; s1 += xr[i + 1] * xr[i + 1]; s2 += xr[i + 2] * xr[i + 2]; s3 += xr[i + 3] * xr[i + 3]
                i += 4
            }
            while i < n { s0 += xr[i] * xr[i]; i += 1 }
            let scale = 1 / ((s0 + s1 + s2 + s3) / Float(n) + eps).squareRoot()
            for j in 0..<n { o[j] = xr[j] * scale * weight[j] }
        }
    }

    /// silu(gate) * up, in place into `gate`, split across cores.
    static func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        nonisolated(unsafe) let (g, u) = (gate, up)
        let parts = count >= 1 << 16 ? cores : 1
        let chunk = (count + parts - 1) / parts
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            for i in (part * chunk)..<min(count, (part + 1) * chunk) {
                let x = g[i]
                g[i] = x / (1 + expf(-x)) * u[i]
            }
        }
    }

    static func add(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows { for j in 0..<n { x[r * n + j] += bias[j] } }
    }

    /// Softmax of each row's entries `first..<valid` in place; the others become 0.
    static func causalSoftmax(_ s: UnsafeMutablePointer<Float>, row: Int, n: Int, valid: Int, first: Int = 0) {
        let r = s + row * n
        var m = -Float.infinity
        for j in first..<valid where r[j] > m { m = r[j] }
        var sum: Float = 0
        for j in first..<valid {
            let e = expf(r[j] - m)
            r[j] = e
            sum += e
        }
        let inv = 1 / sum
        for j in 0..<first { r[j] = 0 }
        for j in first..<valid { r[j] *= inv }
        for j in valid..<n { r[j] = 0 }
    }
}

#if canImport(Glibc)
import Glibc
#endif
