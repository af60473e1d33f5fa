import QuantaCore

// The 2-bit grid formats, ported from ggml (`quantize_row_iq2_xxs_impl`, `_xs_impl`, `_s_impl`).
// Each group of 8 weights is one point of a grid of 8-vectors with levels 1, 3, 5 (times a
// sub-block scale), plus signs. Per 256-value superblock, d:f16 first:
// IQ2_XXS (66 bytes): d, then per 32-value sub-block two u32: four 8-bit grid indices (256-point
//   grid); four 7-bit sign masks (the 8th sign makes the count of minus signs even) and a 4-bit
//   scale in the top bits.
// IQ2_XS (74 bytes): d, 32 u16 (9-bit index into the 512-point grid, 7-bit signs), 8 bytes of
//   4-bit scales (one per 16 values).
// IQ2_S (82 bytes): d, 32 low index bytes, 32 full sign bytes, 8 bytes of the indices' top 2 bits
//   (1024-point grid), 8 bytes of 4-bit scales.
// A sub-block's scale is d * (2s + 1) / 4 (the dequantizer adds the 1/2 and the 1/4).

enum IQ2Quants {
    /// Levels 0...2 (values 1, 3, 5).
    static let kMaxQ = 3

    /// The key of 8 levels (ggml's `u`).
    @inline(__always)
    static func key(_ L: UnsafePointer<Int8>) -> Int {
        var u = 0
        for i in 0..<8 { u |= Int(L[i]) << (2 * i) }
        return u
    }

    /// Level of `x` at inverse scale `id`: nearest of (id x - 1) / 2, clamped to 0...2.
    @inline(__always)
    static func level(_ id: Float, _ x: Float) -> Int8 {
        Int8(max(0, min(kMaxQ - 1, nearestInt(0.5 * (id * x - 1)))))
    }

    /// Absolute values of 8 weights into `xval` and their sign mask. With `evenSigns` (IQ2_XXS,
    /// IQ2_XS: only 7 signs are stored), an odd number of negatives is made even by flipping the
    /// value of least weight * x² (which then enters the fit negated).
    @inline(__always)
    static func signs(_ xb: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ xval: UnsafeMutablePointer<Float>, evenSigns: Bool) -> UInt8 {
        var nflip = 0
        var s: UInt8 = 0
        for i in 0..<8 {
            if xb[i] >= 0 {
                xval[i] = xb[i]
            } else {
                xval[i] = -xb[i]
                nflip += 1
                s |= 1 << i
            }
        }
        if evenSigns && nflip % 2 != 0 {
            var imin = 0
            var min = weight[0] * xb[0] * xb[0]
            for i in 1..<8 {
                let ax = weight[i] * xb[i] * xb[i]
                if ax < min { min = ax; imin = i }
            }
            xval[imin] = -xval[imin]
            s ^= 1 << imin
        }
        return evenSigns ? s & 127 : s
    }

    /// The 4-bit code of a sub-block scale under superblock scale inverse `id`.
    @inline(__always)
    static func scaleCode(_ id: Float, _ scale: Float) -> UInt8 {
        UInt8(max(0, min(15, nearestInt(0.5 * (id * scale - 1)))))
    }

    /// IQ2_XXS for one row of `n` values (ggml `quantize_row_iq2_xxs_impl`; importance required).
    static func quantizeXXS(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw quantWeights: UnsafePointer<Float>) {
        let t = IQ2GridSearch.iq2xxs
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 + 3 * 32) { f in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 64) { l in
                let scales = f.baseAddress!, weight = scales + 8, xval = weight + 32, waux = xval + 32
                let L = l.baseAddress!, Laux = L + 32
                for ibl in 0..<(n / QK_K) {
                    let yb = y + 66 * ibl
                    for j in 0..<66 { yb[j] = 0 }
                    var maxScale: Float = 0
                    let xbl = x + QK_K * ibl
                    var sumx2: Float = 0
                    for i in 0..<QK_K { sumx2 += xbl[i] * xbl[i] }
                    let sigma2 = sumx2 / Float(QK_K)
                    for ib in 0..<(QK_K / 32) {
                        let xb = xbl + 32 * ib
                        importanceWeights(xb, quantWeights + QK_K * ibl + 32 * ib, sigma2: sigma2, weight, 32)
                        for i in 0..<32 { waux[i] = weight[i].squareRoot() }
                        var signWord: UInt32 = 0  // four 7-bit masks
                        for k in 0..<4 { signWord |= UInt32(signs(xb + 8 * k, weight + 8 * k, xval + 8 * k, evenSigns: true)) << (7 * k) }
                        var max = xval[0]
                        for i in 1..<32 { max = Swift.max(max, xval[i]) }
                        if max < groupMaxEps {
                            scales[ib] = 0
                            for i in 0..<32 { L[i] = 0 }
                            continue
                        }
                        var scale = L.withMemoryRebound(to: UInt8.self, capacity: 32) { makeQPQuants(32, kMaxQ + 1, xval, $0, weight) }
                        let effMax = scale * Float(kMaxQ)
                        if effMax <= 0 {
                            scales[ib] = 0
                            for i in 0..<32 { L[i] = 0 }
                            continue
                        }
                        var best: Float = 0
                        for step in -6...6 {
                            let id = (Float(2 * kMaxQ - 1) + Float(step) * 0.1) / effMax
                            let thisScale = 1 / id
                            for k in 0..<4 {
                                for i in 0..<8 { Laux[8 * k + i] = level(id, xval[8 * k + i]) }
                                let u = key(Laux + 8 * k)
                                if t.map[u] < 0 { _ = t.bestNeighbour(u, xval + 8 * k, waux + 8 * k, thisScale, Laux + 8 * k) }
                            }
                            let (sumqx, sumq2) = oddLevelSums(xval, weight, Laux, 32)
                            if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                                scale = sumqx / sumq2
                                best = scale * sumqx
                                L.update(from: Laux, count: 32)
                            }
                        }
                        if scale > 0 {
                            let id = 1 / scale
                            for k in 0..<4 {
                                var u = 0
                                for i in 0..<8 { u |= Int(level(id, xval[8 * k + i])) << (2 * i) }
                                var index = Int(t.map[u])
                                if index < 0 { index = t.bestNeighbour(u, xval + 8 * k, waux + 8 * k, scale, L + 8 * k) }
                                t.levels(index, L + 8 * k)
                            }
                            let (sumqx, sumq2) = oddLevelSums(xval, weight, L, 32)
                            if sumq2 > 0 { scale = sumqx / sumq2 }
                        }
                        if scale < 0 {
                            scale = -scale
                            signWord = ~signWord & 0x0FFF_FFFF
                        }
                        let qs = yb + 2 + 8 * ib
                        for k in 0..<4 {
                            let index = t.map[key(L + 8 * k)]
                            precondition(index >= 0, "IQ2_XXS: point not on the grid")
                            qs[k] = UInt8(index)
                        }
                        for b in 0..<4 { qs[4 + b] = UInt8(truncatingIfNeeded: signWord >> (8 * b)) }
                        scales[ib] = scale
                        maxScale = Swift.max(maxScale, scale)
                    }
                    if maxScale == 0 {
                        for j in 0..<64 { yb[2 + j] = 0 }
                        continue
                    }
                    let d = maxScale / 31
                    yb.storeHalf(fp16(d), at: 0)
                    let id = 1 / d
                    for ib in 0..<(QK_K / 32) { yb[2 + 8 * ib + 7] |= scaleCode(id, scales[ib]) << 4 }
                }
            }
        }
    }

    /// The fit shared by IQ2_XS and IQ2_S for one 16-value sub-block (two grid points): scales
    /// (5 + step/10) / max for step in -9...9, the best weighted least-squares scale, then the
    /// off-grid points re-searched at that scale. Writes levels to `L[0..<16]`; returns the scale.
    @inline(__always)
    static func fitPair(_ t: IQ2GridSearch, _ xval: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ waux: UnsafePointer<Float>,
                        max: Float, _ L: UnsafeMutablePointer<Int8>, _ Laux: UnsafeMutablePointer<Int8>) -> Float {
        var best: Float = 0
        var scale = max / Float(2 * kMaxQ - 1)
        var onGrid = (true, true)
        for step in -9...9 {
            let id = (Float(2 * kMaxQ - 1) + Float(step) * 0.1) / max
            let thisScale = 1 / id
            var onGridAux = (true, true)
            for k in 0..<2 {
                for i in 0..<8 { Laux[8 * k + i] = level(id, xval[8 * k + i]) }
                let u = key(Laux + 8 * k)
                if t.map[u] < 0 {
                    if k == 0 { onGridAux.0 = false } else { onGridAux.1 = false }
                    _ = t.bestNeighbour(u, xval + 8 * k, waux + 8 * k, thisScale, Laux + 8 * k)
                }
            }
            let (sumqx, sumq2) = oddLevelSums(xval, weight, Laux, 16)
            if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                scale = sumqx / sumq2
                best = scale * sumqx
                L.update(from: Laux, count: 16)
                onGrid = onGridAux
            }
        }
        if !(onGrid.0 && onGrid.1) && scale > 0 {
            let id = 1 / scale
            for k in 0..<2 where !(k == 0 ? onGrid.0 : onGrid.1) {
                for i in 0..<8 { L[8 * k + i] = level(id, xval[8 * k + i]) }
                let u = key(L + 8 * k)
                if t.map[u] < 0 { _ = t.bestNeighbour(u, xval + 8 * k, waux + 8 * k, scale, L + 8 * k) }
            }
            let (sumqx, sumq2) = oddLevelSums(xval, weight, L, 16)
            if sumq2 > 0 { scale = sumqx / sumq2 }
        }
        return scale
    }

    /// IQ2_XS (`iq2s` false; importance required) or IQ2_S (`iq2s` true; importance optional)
    /// for one row of `n` values: ggml `quantize_row_iq2_xs_impl` / `quantize_row_iq2_s_impl`.
    static func quantizeXSorS(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw quantWeights: UnsafePointer<Float>?, iq2s s: Bool) {
        let t = s ? IQ2GridSearch.iq2s : IQ2GridSearch.iq2xs
        let blockBytes = s ? 82 : 74
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 + 3 * 16) { f in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 32) { l in
                let scales = f.baseAddress!, weight = scales + 16, xval = weight + 16, waux = xval + 16
                let L = l.baseAddress!, Laux = L + 16
                for ibl in 0..<(n / QK_K) {
                    let yb = y + blockBytes * ibl
                    for j in 0..<blockBytes { yb[j] = 0 }
                    var maxScale: Float = 0
                    let xbl = x + QK_K * ibl
                    var sumx2: Float = 0
                    for i in 0..<QK_K { sumx2 += xbl[i] * xbl[i] }
                    let sigma2 = s ? 2 * sumx2 / Float(QK_K) : sumx2 / Float(QK_K)
                    for ib in 0..<(QK_K / 16) {
                        let xb = xbl + 16 * ib
                        if let quantWeights {
                            importanceWeights(xb, quantWeights + QK_K * ibl + 16 * ib, sigma2: sigma2, weight, 16)
                        } else {
                            for i in 0..<16 { weight[i] = 0.25 * sigma2 + xb[i] * xb[i] }
                        }
                        for i in 0..<16 { waux[i] = weight[i].squareRoot() }
                        var sign0 = signs(xb, weight, xval, evenSigns: !s)
                        var sign1 = signs(xb + 8, weight + 8, xval + 8, evenSigns: !s)
                        var max = xval[0]
                        for i in 1..<16 { max = Swift.max(max, xval[i]) }
                        for i in 0..<16 { L[i] = 0 }
                        if max < (s ? 1e-8 : groupMaxEps) {
                            scales[ib] = 0
                            continue
                        }
                        var scale = fitPair(t, xval, weight, waux, max: max, L, Laux)
                        if scale < 0 {
                            scale = -scale
                            sign0 = s ? ~sign0 : ~sign0 & 127
                            sign1 = s ? ~sign1 : ~sign1 & 127
                        }
                        for k in 0..<2 {
                            let index = Int(t.map[key(L + 8 * k)])
                            precondition(index >= 0, "IQ2_XS/IQ2_S: point not on the grid")
                            let i8 = 2 * ib + k, signByte = k == 0 ? sign0 : sign1
                            if s {
                                yb[2 + i8] = UInt8(index & 255)
                                yb[66 + i8 / 4] |= UInt8(index >> 8) << (2 * (i8 % 4))
                                yb[2 + 32 + i8] = signByte
                            } else {
                                yb.storeHalf(UInt16(index) | UInt16(signByte) << 9, at: 2 + 2 * i8)
                            }
                        }
                        scales[ib] = scale
                        maxScale = Swift.max(maxScale, scale)
                    }
                    if maxScale == 0 {
                        if !s { for j in 2..<66 { yb[j] = 0 } }  // ggml clears IQ2_XS's indices, not IQ2_S's
                        continue
                    }
                    let d = maxScale / 31
                    yb.storeHalf(fp16(s ? d * 0.9875 : d), at: 0)
                    let id = 1 / d
                    let scaleBytes = yb + (s ? 74 : 66)
                    for ib in 0..<(QK_K / 16) {
                        let code = scaleCode(id, scales[ib])
                        if ib % 2 == 0 { scaleBytes[ib / 2] = code } else { scaleBytes[ib / 2] |= code << 4 }
                    }
                }
            }
        }
    }
}

extension GGMLFormat {
    public static let iq2_XXS = GGMLFormat(.iq2_XXS, activation: .q8_K, requiresImportance: true, quantize: { x, y, n, qw, _ in
        IQ2Quants.quantizeXXS(x, y, n: n, qw: qw!)
    }, dequantize: IQDequant.iq2xxs)
    public static let iq2_XS = GGMLFormat(.iq2_XS, activation: .q8_K, requiresImportance: true, quantize: { x, y, n, qw, _ in
        IQ2Quants.quantizeXSorS(x, y, n: n, qw: qw!, iq2s: false)
    }, dequantize: IQDequant.iq2xs)
    public static let iq2_S = GGMLFormat(.iq2_S, activation: .q8_K, quantize: { x, y, n, qw, _ in
        IQ2Quants.quantizeXSorS(x, y, n: n, qw: qw, iq2s: true)
    }, dequantize: IQDequant.iq2s)
}
