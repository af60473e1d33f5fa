import CBLAS
import Dispatch
import QuantaCore

// Dense fp32 building blocks of the forward pass. Matrix products go to OpenBLAS; the rest are
// plain loops over contiguous rows.

public enum Kernels {
    /// Worker threads: the online cores unless `DecoderModel.threads` says otherwise.
    nonisolated(unsafe) static var cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// C[m, n] (ldc) = A[m, k] (lda) · B[n, k]ᵀ (ldb) (+ C when `accumulate`), all row-major.
    /// With `split`, the rows of A and C are divided among the cores in whole 64-row blocks, each
    /// part on single-threaded BLAS (every output element is computed exactly as without the split).
    static func gemmNT(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool = false, alpha: Float = 1, split: Bool = false) {
        let parts = split && m >= 64 * cores ? cores : 1
        if parts == 1 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                        accumulate ? 1 : 0, c, Int32(ldc))
            return
        }
        nonisolated(unsafe) let (pa, pb, pc) = (a, b, c)
        // Parts start at multiples of 64 rows: OpenBLAS's kernels sum a row's edge cases (its
        // position in the kernel's row blocks) in their own order, and that position must not move.
        let rows = ((m + parts - 1) / parts + 63) / 64 * 64
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let r0 = part * rows, r1 = min(m, r0 + rows)
            guard r1 > r0 else { return }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r1 - r0), Int32(n), Int32(k), alpha, pa + r0 * lda, Int32(lda),
                        pb, Int32(ldb), accumulate ? 1 : 0, pc + r0 * ldc, Int32(ldc))
        }
    }

    /// Whether the CPU has 512-bit vectors (AVX-512F): the packed product's 24 sixteen-float
    /// accumulators then fit in registers.
    static let wideVectors = CPUFlags.has("avx512f")

    /// Whether linear layers take `PackedProduct`: the CPU has `wideVectors` but OpenBLAS runs a
    /// kernel without them (as when OPENBLAS_CORETYPE=Haswell is set on an AVX-512 machine),
    /// where the packed product is about 1.8× faster. OpenBLAS's own AVX-512 kernels (SkylakeX,
    /// Cooperlake, SapphireRapids) run as fast and are kept.
    static let packedLinear: Bool = {
        guard wideVectors, let name = openblas_get_corename() else { return false }
        return !["skylakex", "cooperlake", "sapphirerapids"].contains(String(cString: name).lowercased())
    }()

    /// C[rows, n] (+)= X[rows, k] · W[n, k]ᵀ, a linear layer on contiguous rows: `PackedProduct`
    /// where `packedLinear`, otherwise OpenBLAS with the rows split across the cores. Either way
    /// each element is computed the same way at any thread count.
    static func linear(_ rows: Int, _ n: Int, _ k: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                       _ c: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        if packedLinear {
            PackedProduct.product(rows, n, k, x, w, c, ldc: n, accumulate: accumulate, threads: cores)
        } else {
            gemmNT(rows, n, k, x, k, w, k, c, n, accumulate: accumulate, split: true)
        }
    }

    /// C[m, n] = A[m, k] · B[n, k]ᵀ (row-major, contiguous rows) summed in the order of ggml's CPU
    /// f32 products on 16-float vectors (llamafile's tinyBLAS with AVX-512): for each element,
    /// lane l takes the terms k ≡ l (mod 16) in increasing k as fused multiply-adds, then the
    /// lanes reduce as `_mm512_reduce_add_ps` (halves, quarters, then (0+2)+(1+3)). Rows are split
    /// across cores; `k` must be a multiple of 16. With `accumulate`, C += the product (each
    /// element's sum added once, as ggml adds a product to the residual stream).
    static func gemmNTggml(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           _ c: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        TiledProduct.product(m, n, k, a, b, c, ldc: n, accumulate: accumulate, threads: cores)
    }

    /// `gemmNTggml` one element at a time (four columns share each load of a row of A): the
    /// reference the tiled form is tested against.
    static func gemmNTggmlReference(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                    _ c: UnsafeMutablePointer<Float>) {
        precondition(k % 16 == 0, "ggml's vector order needs rows of whole 16-float vectors")
        nonisolated(unsafe) let (pa, pb, pc) = (a, b, c)
        let parts = min(cores, m), rows = (m + parts - 1) / parts
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
            for i in (part * rows)..<min(m, (part + 1) * rows) {
                let x = pa + i * k
                var j = 0
                while j + 4 <= n {  // four columns share each load of x
                    let w0 = pb + j * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k
                    var l0 = SIMD16<Float>(), l1 = l0, l2 = l0, l3 = l0
                    for base in stride(from: 0, to: k, by: 16) {
                        let v = load(x + base)
                        l0 = l0.addingProduct(v, load(w0 + base))
                        l1 = l1.addingProduct(v, load(w1 + base))
                        l2 = l2.addingProduct(v, load(w2 + base))
                        l3 = l3.addingProduct(v, load(w3 + base))
                    }
                    pc[i * n + j] = GGMLOrder.reduce(l0)
                    pc[i * n + j + 1] = GGMLOrder.reduce(l1)
                    pc[i * n + j + 2] = GGMLOrder.reduce(l2)
                    pc[i * n + j + 3] = GGMLOrder.reduce(l3)
                    j += 4
                }
                while j < n {
                    let w = pb + j * k
                    var l = SIMD16<Float>()
                    for base in stride(from: 0, to: k, by: 16) { l = l.addingProduct(load(x + base), load(w + base)) }
                    pc[i * n + j] = GGMLOrder.reduce(l)
                    j += 1
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
    /// Rows are independent: large inputs are split across the cores (same values either way).
    static func rmsNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                        rows: Int, n: Int, eps: Float) {
        let parts = rows * n >= 1 << 17 ? min(cores, rows) : 1
        guard parts == 1 else {
            nonisolated(unsafe) let (px, pw, po) = (x, weight, out)
            let span = (rows + parts - 1) / parts
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let r0 = part * span, r1 = min(rows, r0 + span)
                guard r1 > r0 else { return }
                rmsNorm(px + r0 * n, pw, po + r0 * n, rows: r1 - r0, n: n, eps: eps)
            }
            return
        }
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

    /// silu(gate) * up, in place into `gate`, split across cores (fixed chunks of 8, so the
    /// values do not depend on the split).
    static func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        nonisolated(unsafe) let (g, u) = (gate, up)
        let parts = count >= 1 << 16 ? cores : 1
        let chunk = ((count + parts - 1) / parts + 7) / 8 * 8
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let end = min(count, (part + 1) * chunk)
            var i = part * chunk
            while i + 8 <= end {
                let x = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self)
                let v = UnsafeRawPointer(u + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(g + i).storeBytes(of: x / (1 + exp(-x)) * v, as: SIMD8<Float>.self)
                i += 8
            }
            if i < end {
                var x = SIMD8<Float>(repeating: 0), v = SIMD8<Float>(repeating: 0)
                for t in 0..<(end - i) { x[t] = g[i + t]; v[t] = u[i + t] }
                let y = x / (1 + exp(-x)) * v
                for t in 0..<(end - i) { g[i + t] = y[t] }
            }
        }
    }

    /// gelu_tanh(gate) * up in place into `gate`, with PyTorch's tanh approximation
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (`gelu_pytorch_tanh`).
    static func geglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        nonisolated(unsafe) let (g, u) = (gate, up)
        let parts = count >= 1 << 16 ? cores : 1
        let chunk = (count + parts - 1) / parts
        let beta = Float(2 / Double.pi).squareRoot(), kappa: Float = 0.044715
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            for i in (part * chunk)..<min(count, (part + 1) * chunk) {
                let x = g[i]
                g[i] = 0.5 * x * (1 + tanhf(beta * (x + kappa * x * x * x))) * u[i]
            }
        }
    }

    static func add(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows { for j in 0..<n { x[r * n + j] += bias[j] } }
    }

    /// Softmax of each row's entries `first..<valid` in place; the others become 0. The
    /// exponentials go eight at a time through `exp`; the sum adds eight lanes, then the lanes.
    static func causalSoftmax(_ s: UnsafeMutablePointer<Float>, row: Int, n: Int, valid: Int, first: Int = 0) {
        let r = s + row * n
        var top = SIMD8<Float>(repeating: -.infinity)
        var j = first
        while j + 8 <= valid {
            let v = UnsafeRawPointer(r + j).loadUnaligned(as: SIMD8<Float>.self)
            top = larger(top, v)
            j += 8
        }
        var m = top.max()
        while j < valid { m = Swift.max(m, r[j]); j += 1 }
        var sums = SIMD8<Float>(repeating: 0)
        j = first
        while j + 8 <= valid {
            let e = exp(UnsafeRawPointer(r + j).loadUnaligned(as: SIMD8<Float>.self) - m)
            UnsafeMutableRawPointer(r + j).storeBytes(of: e, as: SIMD8<Float>.self)
            sums += e
            j += 8
        }
        if j < valid {
            var x = SIMD8<Float>(repeating: -Float.infinity)
            for t in 0..<(valid - j) { x[t] = r[j + t] }
            let e = exp(x - m)
            for t in 0..<(valid - j) { r[j + t] = e[t] }
            sums += e
        }
        let inv = 1 / sums.sum()
        r.update(repeating: 0, count: first)
        j = first
        while j + 8 <= valid {
            let p = UnsafeMutableRawPointer(r + j)
            p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) * inv, as: SIMD8<Float>.self)
            j += 8
        }
        while j < valid { r[j] *= inv; j += 1 }
        (r + valid).update(repeating: 0, count: n - valid)
    }

    /// The lane-wise larger of a and b (a where b is not larger, NaN included), as a bitwise
    /// select: the standard library's `pointwiseMax` and `replacing(with:where:)` compile to
    /// per-lane branches.
    @inline(__always)
    static func larger(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        let mask = unsafeBitCast(b .> a, to: SIMD8<UInt32>.self)
        let x = unsafeBitCast(a, to: SIMD8<UInt32>.self), y = unsafeBitCast(b, to: SIMD8<UInt32>.self)
        return unsafeBitCast(x ^ ((x ^ y) & mask), to: SIMD8<Float>.self)
    }

    /// log Σ exp(row[j]) over n > 0 floats: the maximum in Float (exact), each exp(row[j] - max)
    /// by `exp` (within 1.5 ulp of expf, as llama-perplexity's expf), summed in Double over
    /// eight lanes, the lanes then in order. Infinite or NaN inputs give a non-finite result.
    public static func logSumExp(_ row: UnsafePointer<Float>, _ n: Int) -> Double {
        var top = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= n {
            let v = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
            top = larger(top, v)
            j += 8
        }
        var m = top.max()
        while j < n { m = Swift.max(m, row[j]); j += 1 }
        let shift = SIMD8<Float>(repeating: m)
        var sums = SIMD8<Double>(repeating: 0)
        j = 0
        while j + 8 <= n {
            let e = exp(UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self) - shift)
            sums += SIMD8<Double>(e)
            j += 8
        }
        if j < n {
            var x = SIMD8<Float>(repeating: -.infinity)
            for t in 0..<(n - j) { x[t] = row[j + t] }
            sums += SIMD8<Double>(exp(x - shift))
        }
        var sum = 0.0
        for lane in 0..<8 { sum += sums[lane] }
        return Double(m) + log(sum)
    }

    /// e^x for eight floats: ggml's `ggml_v_expf` (its AVX2 form; MIT licence), the
    /// exponential llama.cpp's CPU backend uses in softmax and SiLU: x = n ln2 + b with
    /// n = round(x / ln2) (two-part ln2), e^b by a degree-5 polynomial, 2^n by exponent bits,
    /// with the scaling split in two when |n| > 126 (0 below -192 ln2 and +inf above). Within
    /// 1.5 ulp of expf; e^-inf = 0.
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias V = SIMD8<Float>
        typealias U = SIMD8<UInt32>
        let r = V(repeating: 0x1.8p23)
        let z = r.addingProduct(x, V(repeating: 0x1.715476p+0))
        let n = z - r
        let b = x.addingProduct(n, V(repeating: -0x1.62e4p-1)).addingProduct(n, V(repeating: -0x1.7f7d1cp-20))
        let e = unsafeBitCast(z, to: U.self) &<< 23
        let k = unsafeBitCast(e &+ unsafeBitCast(V(repeating: 1), to: U.self), to: V.self)
        let magnitude = unsafeBitCast(unsafeBitCast(n, to: U.self) & U(repeating: 0x7fff_ffff), to: V.self)
        let c = magnitude .> V(repeating: 126)
        let u = b * b
        let inner = V(repeating: 0x1.573e2ep-5).addingProduct(V(repeating: 0x1.0e4020p-7), b)
        let outer = V(repeating: 0x1.fffdb6p-2).addingProduct(V(repeating: 0x1.555e66p-3), b)
        let j = (V(repeating: 0x1.ffffecp-1) * b).addingProduct(outer.addingProduct(inner, u), u)
        let plain = k.addingProduct(j, k)
        guard any(c) else { return plain }
        let g = U(repeating: 0).replacing(with: U(repeating: 0x8200_0000), where: n .<= V(repeating: 0))
        let s1 = unsafeBitCast(g &+ U(repeating: 0x7f00_0000), to: V.self)
        let s2 = unsafeBitCast(e &- g, to: V.self)
        let d = magnitude .> V(repeating: 192)
        return plain.replacing(with: s2.addingProduct(s2, j) * s1, where: c).replacing(with: s1 * s1, where: d)
    }
}

#if canImport(Glibc)
import Glibc
#endif
