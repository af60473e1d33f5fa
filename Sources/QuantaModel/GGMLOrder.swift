import Dispatch
import QuantaCore

#if canImport(Glibc)
import Glibc
#endif

/// The float operations of llama.cpp's CPU backend (ggml d32676d built for AVX-512, as
/// llama-imatrix and llama-perplexity run on such a host) in their exact order, so that the
/// llamacpp runtime of an f32 llama-family model gives llama.cpp's activations bit for bit:
/// RMSNorm (`ggml_compute_forward_rms_norm_f32`), RoPE (`ggml_rope_cache_init`, `rotate_pairs`
/// compiled with fused multiply-adds), the tiled flash attention
/// (`ggml_compute_forward_flash_attn_ext_tiled`: 64-key tiles, online softmax), SwiGLU
/// (`ggml_vec_swiglu_f32`) and the AVX-512 `ggml_v_expf` both use. Lanes are independent
/// everywhere except in the 16-lane sums, which follow `_mm512_reduce_add_ps`.
enum GGMLOrder {
    /// Keys per flash-attention tile (`GGML_FA_TILE_KV`).
    static let keyTile = 64

    /// `out[r] = (x[r] * scale) * weight` with scale = 1 / sqrtf(mean + eps), where the mean is
    /// the double sum of the float squares, in order, over `n`, rounded to float. Rows split across cores.
    static func rmsNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                        rows: Int, n: Int, eps: Float) {
        nonisolated(unsafe) let (px, pw, po) = (x, weight, out)
        let parts = min(Kernels.cores, rows), span = (rows + parts - 1) / parts
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            for r in (part * span)..<min(rows, (part + 1) * span) {
                let xr = px + r * n, o = po + r * n
                var sum = 0.0
                for i in 0..<n { sum += Double(xr[i] * xr[i]) }
                let mean = Float(sum / Double(n))
                let scale = 1 / (mean + eps).squareRoot()
                for i in 0..<n { o[i] = xr[i] * scale * pw[i] }
            }
        }
    }

    /// RoPE's cosines and sines `[positions, dimensions / 2]` as `ggml_rope_cache_init` makes them:
    /// theta = position (float), multiplied by powf(base, -2 / dimensions) in float after each pair.
    static func ropeTables(base: Float, dimensions: Int, positions: Int) -> (cos: [Float], sin: [Float]) {
        let half = dimensions / 2
        let thetaScale = powf(base, -2 / Float(dimensions))
        var cosines = [Float](repeating: 0, count: positions * half), sines = cosines
        for p in 0..<positions {
            var theta = Float(p)
            for i in 0..<half {
                cosines[p * half + i] = cosf(theta)
                sines[p * half + i] = sinf(theta)
                theta *= thetaScale
            }
        }
        return (cosines, sines)
    }

    /// One rotated pair as ggml's compiled `rotate_pairs`: fma(x0, cos, -(x1 sin)), fma(x0, sin, x1 cos).
    @inline(__always)
    static func rotate(_ x0: Float, _ x1: Float, cos c: Float, sin s: Float) -> (Float, Float) {
        ((-(x1 * s)).addingProduct(x0, c), (x1 * c).addingProduct(x0, s))
    }

    /// e^x for eight lanes as AVX-512's `ggml_v_expf`: n = round(x log2 e), b = x - n ln2 in two
    /// parts, j = 1 + b + ... by a degree-5 polynomial, e^x = scalef(j, n); 0 or +inf where |n| > 192.
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias V = SIMD8<Float>
        let r = V(repeating: 0x1.8p23)
        let z = r.addingProduct(x, V(repeating: 0x1.715476p+0))
        let n = z - r
        let b = x.addingProduct(n, V(repeating: -0x1.62e4p-1)).addingProduct(n, V(repeating: -0x1.7f7d1cp-20))
        let u = b * b
        let t1 = V(repeating: 0x1.573e2ep-5).addingProduct(V(repeating: 0x1.0e4020p-7), b)
        let t2 = V(repeating: 0x1.fffdb6p-2).addingProduct(V(repeating: 0x1.555e66p-3), b)
        let t4 = V(repeating: 1).addingProduct(V(repeating: 0x1.ffffecp-1), b)
        let j = t4.addingProduct(t2.addingProduct(t1, u), u)
        let magnitude = unsafeBitCast(unsafeBitCast(n, to: SIMD8<UInt32>.self) & SIMD8(repeating: 0x7fff_ffff), to: V.self)
        var result: V
        if all(magnitude .<= V(repeating: 126)) {
            // z's low bits hold n: shifted into the exponent field and added to 1's bits, 2^n.
            let powers = unsafeBitCast((unsafeBitCast(z, to: SIMD8<UInt32>.self) &<< 23) &+ unsafeBitCast(V(repeating: 1), to: SIMD8<UInt32>.self),
                                       to: V.self)
            result = j * powers
        } else {
            result = V()
            for l in 0..<8 {  // scalef: one correctly rounded scaling, to subnormals and infinity too
                if n[l].isNaN {
                    result[l] = .nan
                } else {
                    result[l] = magnitude[l] > 192 ? (n[l] <= 0 ? 0 : .infinity) : Float(sign: .plus, exponent: Int(n[l]), significand: j[l])
                }
            }
        }
        return result
    }

    /// `_mm512_reduce_add_ps` of sixteen lanes: halves, quarters, then (0 + 2) + (1 + 3).
    @inline(__always)
    static func reduce(_ l: SIMD16<Float>) -> Float {
        let h = l.lowHalf + l.highHalf, q = h.lowHalf + h.highHalf
        return (q[0] + q[2]) + (q[1] + q[3])
    }

    /// silu(gate) * up in place into `gate` as `ggml_vec_swiglu_f32`: (x / (1 + exp(0 - x))) * g
    /// in whole 16-value vectors of each row of `n`, the rest by `expf`. Rows split across cores.
    static func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, rows: Int, n: Int) {
        nonisolated(unsafe) let (g, u) = (gate, up)
        let parts = min(Kernels.cores, rows), span = (rows + parts - 1) / parts
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            for r in (part * span)..<min(rows, (part + 1) * span) {
                let x = g + r * n, y = u + r * n
                let vectorEnd = n / 16 * 16
                var i = 0
                while i < vectorEnd {
                    let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
                    let w = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
                    let silu = v / (1 + exp(0 - v))
                    UnsafeMutableRawPointer(x + i).storeBytes(of: silu * w, as: SIMD8<Float>.self)
                    i += 8
                }
                for j in vectorEnd..<n { x[j] = x[j] / (1 + expf(-x[j])) * y[j] }
            }
        }
    }

    /// Causal attention of one sequence of T positions as ggml's tiled flash attention with f32 Q
    /// and f16-valued K/V: per query row, the keys in tiles of 64 from position 0 (tiles wholly in
    /// the future skipped), each score a chain of fused multiply-adds over the head's dimensions in
    /// GGUF order (`halves`: the Hugging Face layout, whose dimension i and i + d/2 are GGUF's 2i
    /// and 2i+1), times `scale`; the running maximum rescales the sum and the output by expf; the
    /// tile's exponentials (`exp`) add to the float sum through a double per 16 keys; the output
    /// accumulates V by fused multiply-adds in key order and is divided by the sum at the end.
    /// Rows `[T, stride]`, heads `headDim` wide; output A `[T, qStride]`.
    static func attention(_ Q: UnsafePointer<Float>, _ K: UnsafePointer<Float>, _ V: UnsafePointer<Float>, _ A: UnsafeMutablePointer<Float>,
                          T: Int, heads: Int, kvHeads: Int, headDim: Int, qStride: Int, kvStride: Int, scale: Float, halves: Bool) {
        let group = heads / kvHeads, hd = headDim, half = hd / 2
        nonisolated(unsafe) let (q, k, v, a) = (Q, K, V, A)
        DispatchQueue.concurrentPerform(iterations: min(Kernels.cores, heads)) { worker in
            var scores = [Float](repeating: 0, count: keyTile)
            var output = [Float](repeating: 0, count: hd)
            scores.withUnsafeMutableBufferPointer { sp in
                output.withUnsafeMutableBufferPointer { op in
                    let kq = sp.baseAddress!, acc = op.baseAddress!
                    for head in stride(from: worker, to: heads, by: min(Kernels.cores, heads)) {
                        let kvHead = head / group
                        for t in 0..<T {
                            let qr = q + t * qStride + head * hd
                            var m = -Float.infinity, s: Float = 0
                            for d in 0..<hd { acc[d] = 0 }
                            for first in stride(from: 0, through: t, by: keyTile) {
                                let valid = min(keyTile, t + 1 - first)
                                var tileMax = -Float.infinity
                                for tk in 0..<keyTile {
                                    guard tk < valid else { kq[tk] = -.infinity; continue }
                                    let kr = k + (first + tk) * kvStride + kvHead * hd
                                    var dot: Float = 0
                                    if halves {
                                        for i in 0..<half {
                                            dot = dot.addingProduct(qr[i], kr[i])
                                            dot = dot.addingProduct(qr[i + half], kr[i + half])
                                        }
                                    } else {
                                        for d in 0..<hd { dot = dot.addingProduct(qr[d], kr[d]) }
                                    }
                                    kq[tk] = dot * scale
                                    tileMax = Swift.max(tileMax, kq[tk])
                                }
                                let newMax = Swift.max(m, tileMax)
                                if newMax > m {
                                    let ms = expf(m - newMax)
                                    for d in 0..<hd { acc[d] *= ms }
                                    s *= ms
                                }
                                m = newMax
                                var sum = 0.0
                                for block in stride(from: 0, to: keyTile, by: 16) {
                                    for half8 in stride(from: block, to: block + 16, by: 8) {
                                        let x = UnsafeRawPointer(kq + half8).loadUnaligned(as: SIMD8<Float>.self)
                                        UnsafeMutableRawPointer(kq + half8).storeBytes(of: exp(x - SIMD8(repeating: newMax)), as: SIMD8<Float>.self)
                                    }
                                    sum += Double(reduce(UnsafeRawPointer(kq + block).loadUnaligned(as: SIMD16<Float>.self)))
                                }
                                s = Float(Double(s) + sum)
                                for tk in 0..<valid {
                                    let vr = v + (first + tk) * kvStride + kvHead * hd, p = kq[tk]
                                    for d in 0..<hd { acc[d] = acc[d].addingProduct(vr[d], p) }
                                }
                            }
                            let inverse: Float = s == 0 ? 0 : 1 / s
                            let out = a + t * qStride + head * hd
                            for d in 0..<hd { out[d] = acc[d] * inverse }
                        }
                    }
                }
            }
        }
    }
}
