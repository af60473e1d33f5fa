import QuantaCore

// The 4-bit non-linear formats, ported from ggml.
// IQ4_NL (18 bytes / 32): d:f16, qs[16] (indices into `iq4nlValues`).
// IQ4_XS (136 bytes / 256): d:f16, scales_h:u16, scales_l[4], qs[128].

enum IQ4Quants {
    /// ggml `kvalues_iq4nl`.
    static let values: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
    static let floatValues: [Float] = values.map(Float.init)

    /// The index whose value times `dl` is nearest to `x` (index 8, value 1, when `dl` is 0).
    static func nearestIndex(_ x: Float, _ dl: Float) -> Int32 {
        floatValues.withUnsafeBufferPointer { Int32(bestIndex($0.baseAddress!, dl != 0 ? x / dl : 0)) }
    }

    /// IQ4_XS sub-block `ib`'s scale: d * (6-bit scale - 32).
    static func scaleXS(_ b: UnsafePointer<UInt8>, _ ib: Int) -> Float {
        let ls = (Int(b[4 + ib / 2]) >> (4 * (ib % 2))) & 0xF | ((Int(b.half(at: 2)) >> (2 * ib)) & 3) << 4
        return b.halfFloat(at: 0) * Float(ls - 32)
    }

    /// ggml `best_index_int8` over the 16 non-linear values `v` (as Float).
    @inline(__always)
    static func bestIndex(_ v: UnsafePointer<Float>, _ x: Float) -> Int {
        if x <= v[0] { return 0 }
        if x >= v[15] { return 15 }
        var ml = 0, mu = 15
        while mu - ml > 1 {
            let mav = (ml + mu) / 2
            if x < v[mav] { mu = mav } else { ml = mav }
        }
        return x - v[mu - 1] < v[mu] - x ? mu - 1 : mu
    }

    /// The per-block scale search of ggml's `quantize_row_iq4_nl_impl` on 32 values `xb` with
    /// weights `weight`: the least-squares scale of the best of 2·ntry + 2 candidate grids (0 for
    /// an all-zero block). The plain form of `GroupLanes.searchIQ4`, which the quantizers use.
    static func searchBlockReference(_ xb: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, ntry: Int) -> Float {
        let blockSize = 32
        return floatValues.withUnsafeBufferPointer { buffer in
            let values = buffer.baseAddress!
            let (max, amax) = maxByMagnitude(xb, blockSize)
            if amax < groupMaxEps { return 0 }
            var d = ntry > 0 ? -max / values[0] : max / values[0]
            var id = 1 / d
            var sumqx: Float = 0, sumq2: Float = 0
            for j in 0..<blockSize {
                let q = values[bestIndex(values, id * xb[j])]
                let w = weight[j]
                sumqx += w * q * xb[j]
                sumq2 += w * q * q
            }
            d = sumqx / sumq2
            var best = d * sumqx
            if ntry >= 0 {
                for itry in -ntry...ntry {
                    id = Float(itry + Int(IQ4Quants.values[0])) / max
                    sumqx = 0
                    sumq2 = 0
                    for j in 0..<blockSize {
                        let q = values[bestIndex(values, id * xb[j])]
                        let w = weight[j]
                        sumqx += w * q * xb[j]
                        sumq2 += w * q * q
                    }
                    if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                        d = sumqx / sumq2
                        best = d * sumqx
                    }
                }
            }
            return d
        }
    }

    /// Loads block `lane`'s values and ggml's weights (importance · sqrt(σ² + x²), or x²).
    @inline(__always)
    static func loadBlock(_ xb: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, sigma2: Float, lane: Int, _ s: QuantScratch) {
        if let qw {
            importanceWeights(xb, qw, sigma2: sigma2, s.weights, 32)
        } else {
            for j in 0..<32 { s.weights[j] = xb[j] * xb[j] }
        }
        s.lanes.load(lane: lane, xb, s.weights, 32)
    }

    /// 2·mean(x²) over `n` values, the σ² of the importance weights.
    @inline(__always)
    static func sigma2(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum: Float = 0
        for j in 0..<n { sum += x[j] * x[j] }
        return sum * (2 / Float(n))
    }

    /// The rest of `quantize_row_iq4_nl_impl` for one superblock of `superBlock` values (32 for
    /// IQ4_NL, 256 for IQ4_XS) once the per-32 scales are in `scales`: the 6-bit sub-block scales
    /// (IQ4_XS) and the final indices. `scalesH`/`scalesL` are used only when superBlock > 32.
    static func finishSuperblock(_ superBlock: Int, _ x: UnsafePointer<Float>, scales: UnsafePointer<Float>,
                                 dh: UnsafeMutablePointer<UInt8>, q4: UnsafeMutablePointer<UInt8>,
                                 scalesH: UnsafeMutablePointer<UInt8>?, scalesL: UnsafeMutablePointer<UInt8>?, _ s: QuantScratch) {
        let L = s.L, values = s.iq4
        let blockSize = 32
        var maxScale: Float = 0, amaxScale: Float = 0
        for ib in 0..<(superBlock / blockSize) where abs(scales[ib]) > amaxScale {
            amaxScale = abs(scales[ib])
            maxScale = scales[ib]
        }
        if superBlock / blockSize > 1, let scalesH, let scalesL {
            let nb = superBlock / blockSize
            for b in 0..<(((nb + 7) / 8) * 2) { scalesH[b] = 0 }
            var sh: UInt16 = 0
            let d = -maxScale / 32
            dh.storeHalf(fp16(d), at: 0)
            let id: Float = d != 0 ? 1 / d : 0
            for ib in 0..<nb {
                var l = nearestInt(id * scales[ib])
                l = Swift.max(-32, Swift.min(31, l))
                let dl = d * Float(l)
                let idl: Float = dl != 0 ? 1 / dl : 0
                let xb = x + ib * blockSize
                for j in 0..<blockSize { L[ib * blockSize + j] = UInt8(bestIndex(values, idl * xb[j])) }
                l += 32
                let low = UInt8(l & 0xF), high = UInt16(l >> 4)
                if ib % 2 == 0 { scalesL[ib / 2] = low } else { scalesL[ib / 2] |= low << 4 }
                sh |= high << (2 * (ib % 8))
            }
            scalesH[0] = UInt8(sh & 0xFF)
            scalesH[1] = UInt8(sh >> 8)
        } else {
            dh.storeHalf(fp16(scales[0]), at: 0)
            let id: Float = scales[0] != 0 ? 1 / scales[0] : 0
            for j in 0..<superBlock { L[j] = UInt8(bestIndex(values, id * x[j])) }
        }
        for i in 0..<(superBlock / 32) {
            for j in 0..<16 { q4[16 * i + j] = L[32 * i + j] | L[32 * i + 16 + j] << 4 }
        }
    }

    /// IQ4_NL for one row of `n` values; ggml's `quantize_iq4_nl` (ntry 7, with or without
    /// importance), sixteen blocks searched side by side.
    static func quantizeIQ4_NL(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>?, _ s: QuantScratch) {
        s.lanes.batches(of: n / 32, length: 32, load: { k, ib in
            let xb = x + 32 * ib
            loadBlock(xb, qw.map { $0 + 32 * ib }, sigma2: sigma2(xb, 32), lane: k, s)
        }, search: { s.lanes.searchIQ4(32, ntry: 7) }, finish: { k, ib in
            let yb = y + 18 * ib
            s.scales[0] = s.lanes.scale[k]
            finishSuperblock(32, x + 32 * ib, scales: s.scales, dh: yb, q4: yb + 2, scalesH: nil, scalesL: nil, s)
        })
    }

    /// IQ4_XS for one row of `n` values; ggml's `quantize_iq4_xs`, two superblocks searched side by side.
    static func quantizeIQ4_XS(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>?, _ s: QuantScratch) {
        let superblocks = n / QK_K, lanes = s.lanes
        for first in stride(from: 0, to: superblocks, by: 2) {
            let count = Swift.min(2, superblocks - first)
            if count < 2 { lanes.clear(32) }
            for b in 0..<count {
                let xs = x + QK_K * (first + b), sigma = sigma2(xs, QK_K)
                for ib in 0..<8 {
                    loadBlock(xs + 32 * ib, qw.map { $0 + QK_K * (first + b) + 32 * ib }, sigma2: sigma, lane: 8 * b + ib, s)
                }
            }
            lanes.searchIQ4(32, ntry: 7)
            for b in 0..<count {
                let yb = y + 136 * (first + b)
                for ib in 0..<8 { s.scales[ib] = lanes.scale[8 * b + ib] }
                finishSuperblock(QK_K, x + QK_K * (first + b), scales: s.scales, dh: yb, q4: yb + 8, scalesH: yb + 2, scalesL: yb + 4, s)
            }
        }
    }

    static func dequantizeIQ4_NL(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 18 * i, yb = y + 32 * i
            let d = xb.halfFloat(at: 0)
            for j in 0..<16 {
                yb[j] = d * Float(values[Int(xb[2 + j] & 0xF)])
                yb[j + 16] = d * Float(values[Int(xb[2 + j] >> 4)])
            }
        }
    }

    static func dequantizeIQ4_XS(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + 136 * i
            for ib in 0..<8 {
                let dl = scaleXS(xb, ib)
                let qs = xb + 8 + 16 * ib, yb = y + QK_K * i + 32 * ib
                for j in 0..<16 {
                    yb[j] = dl * Float(values[Int(qs[j] & 0xF)])
                    yb[j + 16] = dl * Float(values[Int(qs[j] >> 4)])
                }
            }
        }
    }
}

extension GGMLFormat {
    public static let iq4_NL = GGMLFormat(.iq4_NL, activation: .q8_0, quantize: { x, y, n, qw, s in
        IQ4Quants.quantizeIQ4_NL(x, y, n: n, qw: qw, s)
    }, dequantize: IQ4Quants.dequantizeIQ4_NL, codec: BlockCodec(
        level: { x, _, b in IQ4Quants.nearestIndex(x, b.halfFloat(at: 0)) },
        value: { q, _, b in b.halfFloat(at: 0) * IQ4Quants.floatValues[Int(q)] },
        pack: { l, b in for j in 0..<16 { b[2 + j] = UInt8(l[j]) | UInt8(l[j + 16]) << 4 } }))

    public static let iq4_XS = GGMLFormat(.iq4_XS, activation: .q8_K, quantize: { x, y, n, qw, s in
        IQ4Quants.quantizeIQ4_XS(x, y, n: n, qw: qw, s)
    }, dequantize: IQ4Quants.dequantizeIQ4_XS, codec: BlockCodec(
        level: { x, j, b in IQ4Quants.nearestIndex(x, IQ4Quants.scaleXS(b, j / 32)) },
        value: { q, j, b in IQ4Quants.scaleXS(b, j / 32) * IQ4Quants.floatValues[Int(q)] },
        pack: { l, b in
            for ib in 0..<8 {
                for j in 0..<16 { b[8 + 16 * ib + j] = UInt8(l[32 * ib + j]) | UInt8(l[32 * ib + 16 + j]) << 4 }
            }
        }))
}
