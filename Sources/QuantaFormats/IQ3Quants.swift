import QuantaCore

/// The 3-bit grid formats, ported from ggml (`quantize_row_iq3_xxs_impl`, `quantize_row_iq3_s_impl`).
///
/// A superblock of 256 values is 8 groups of 32; a group is 8 points of 4 magnitudes, each point
/// on the format's grid (`IQ3Grid`), with one sign bit per value and one 4-bit scale per group.
/// IQ3_XXS (98 bytes): d:f16, qs[64] (grid index per point), then per group a u32 of four 7-bit
/// sign sets (the eighth sign makes the parity even) and the scale in bits 28-31; a group's
/// scale is d * (0.5 + s) * 0.5. IQ3_S (110 bytes): d:f16, qs[64] (low 8 bits of the 9-bit grid
/// index), qh[8] (bit 8, one byte per group), signs[32] (8 per point pair), scales[4] (two
/// groups per byte, low nibble first); a group's scale is d * (1 + 2s).
/// Importance is optional for both (llama-quantize insists on it for IQ3_XXS blk tensors; ggml
/// does not).
enum IQ3Quants {
    /// One group of 32 values at `xb`: the search over 31 (IQ3_XXS) or 19 (IQ3_S) trial scales,
    /// then the off-grid points re-snapped at the best scale. Leaves the 32 levels (0...7) in
    /// `s.Li[0..<32]`, the 4 sign bytes in `signs`, and returns the group's scale (>= 0), or nil
    /// for a group ggml skips as zero (its bytes stay zero).
    static func quantizeGroup(_ xb: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, sigma2: Float, grid: IQ3Grid, xxs: Bool,
                              signs: UnsafeMutablePointer<UInt8>, _ s: QuantScratch) -> Float? {
        let weight = s.weights, xval = s.weights + 32, waux = s.weights + 64
        let L = s.Li, Laux = s.Li + 32
        if let qw {
            for i in 0..<32 { weight[i] = qw[i] * (sigma2 + xb[i] * xb[i]).squareRoot() }
        } else {
            for i in 0..<32 { weight[i] = xb[i] * xb[i] }
        }
        for i in 0..<32 { waux[i] = weight[i].squareRoot() }
        for k in 0..<4 {
            var nflip = 0
            var sign: UInt8 = 0
            for i in 0..<8 {
                let v = xb[8 * k + i]
                if v >= 0 {
                    xval[8 * k + i] = v
                } else {
                    xval[8 * k + i] = -v
                    nflip += 1
                    sign |= 1 << i
                }
            }
            if xxs && nflip % 2 == 1 {
                // An odd number of signs: flip the value cheapest to flip, so 7 bits carry all 8.
                var imin = 0
                var min = weight[8 * k] * xb[8 * k] * xb[8 * k]
                for i in 1..<8 {
                    let ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i]
                    if ax < min {
                        min = ax
                        imin = i
                    }
                }
                xval[8 * k + imin] = -xval[8 * k + imin]
                sign ^= 1 << imin
            }
            signs[k] = xxs ? sign & 127 : sign
        }
        var max = xval[0]
        for i in 1..<32 { max = max > xval[i] ? max : xval[i] }
        for i in 0..<32 { L[i] = 0 }
        if xxs ? max < 1e-8 : max == 0 { return nil }

        var best: Float = 0
        var scale = max / 15
        var onGrid: UInt8 = xxs ? 0xFF : 0  // bit k: point k is on the grid
        let steps = xxs ? 15 : 9
        for step in -steps...steps {
            let id = (15 + Float(step) * 0.2) / max
            let thisScale = 1 / id
            var onGridAux: UInt8 = 0
            for k in 0..<8 {
                var u = 0
                for i in 0..<4 {
                    let l = Swift.max(0, Swift.min(7, nearestInt(0.5 * (id * xval[4 * k + i] - 1))))
                    Laux[4 * k + i] = Int8(l)
                    u |= l << (3 * i)
                }
                if grid.map[u] >= 0 {
                    onGridAux |= 1 << k
                } else {
                    _ = grid.bestNeighbour(u, xval + 4 * k, waux + 4 * k, thisScale, Laux + 4 * k)
                }
            }
            let (sumqx, sumq2) = oddLevelSums(xval, weight, Laux, 32)
            if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                scale = sumqx / sumq2
                best = scale * sumqx
                for i in 0..<32 { L[i] = Laux[i] }
                onGrid = onGridAux
            }
        }
        if onGrid != 0xFF && scale > 0 {
            // IQ3_XXS re-snaps only the points that were off the grid, IQ3_S all of them.
            let id = 1 / scale
            for k in 0..<8 where !xxs || onGrid & (1 << k) == 0 {
                var u = 0
                for i in 0..<4 {
                    let l = Swift.max(0, Swift.min(7, nearestInt(0.5 * (id * xval[4 * k + i] - 1))))
                    u |= l << (3 * i)
                }
                var g = Int(grid.map[u])
                if g < 0 { g = grid.bestNeighbour(u, xval + 4 * k, waux + 4 * k, scale, L + 4 * k) }
                for i in 0..<4 { L[4 * k + i] = (grid.points[4 * g + i] - 1) / 2 }
            }
            let (sumqx, sumq2) = oddLevelSums(xval, weight, L, 32)
            if sumq2 > 0 { scale = sumqx / sumq2 }
        }
        if scale < 0 {
            scale = -scale
            for k in 0..<4 { signs[k] = xxs ? ~signs[k] & 127 : ~signs[k] }
        }
        return scale
    }

    /// The 4-bit scale of a group: round(0.5 * (scale / d - 1)) in 0...15.
    @inline(__always)
    static func scaleLevel(_ scale: Float, _ id: Float) -> Int {
        Swift.max(0, Swift.min(15, nearestInt(0.5 * (id * scale - 1))))
    }

    /// IQ3_XXS for one row of `n` values (whole superblocks); ggml `quantize_iq3_xxs`.
    static func quantizeIQ3_XXS(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>?, _ s: QuantScratch) {
        let grid = IQ3Grid.xxs, scales = s.scales, signs = s.Ls, L = UnsafePointer(s.Li)
        for ibl in 0..<(n / QK_K) {
            let xbl = x + QK_K * ibl, yb = y + 98 * ibl
            for j in 0..<98 { yb[j] = 0 }
            let sigma2 = superblockSigma2(xbl)
            var maxScale: Float = 0
            for ib in 0..<8 {
                guard let scale = quantizeGroup(xbl + 32 * ib, qw.map { $0 + QK_K * ibl + 32 * ib }, sigma2: sigma2,
                                                grid: grid, xxs: true, signs: signs, s) else {
                    scales[ib] = 0
                    continue
                }
                for k in 0..<8 { yb[2 + 8 * ib + k] = UInt8(grid.index(L + 4 * k)) }
                let word = UInt32(signs[0]) | UInt32(signs[1]) << 7 | UInt32(signs[2]) << 14 | UInt32(signs[3]) << 21
                for b in 0..<4 { yb[66 + 4 * ib + b] = UInt8(truncatingIfNeeded: word >> (8 * b)) }
                scales[ib] = scale
                maxScale = maxScale > scale ? maxScale : scale
            }
            if maxScale == 0 {
                for j in 2..<98 { yb[j] = 0 }
                continue
            }
            let d = maxScale / 31
            yb.storeHalf(fp16(d * 1.0125), at: 0)
            let id = 1 / d
            for ib in 0..<8 { yb[66 + 4 * ib + 3] |= UInt8(scaleLevel(scales[ib], id) << 4) }
        }
    }

    /// IQ3_S for one row of `n` values (whole superblocks); ggml `quantize_iq3_s`.
    /// As in ggml, a group skipped as zero does not advance the qs and signs write positions
    /// (the following groups land one slot early); qh and scales stay per group.
    static func quantizeIQ3_S(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, n: Int, qw: UnsafePointer<Float>?, _ s: QuantScratch) {
        let grid = IQ3Grid.s, scales = s.scales, blockSigns = s.Ls, L = UnsafePointer(s.Li)
        for ibl in 0..<(n / QK_K) {
            let xbl = x + QK_K * ibl, yb = y + 110 * ibl
            for j in 0..<110 { yb[j] = 0 }
            var qs = yb + 2, signs = yb + 74
            let qh = yb + 66
            let sigma2 = superblockSigma2(xbl)
            var maxScale: Float = 0
            for ib in 0..<8 {
                guard let scale = quantizeGroup(xbl + 32 * ib, qw.map { $0 + QK_K * ibl + 32 * ib }, sigma2: sigma2,
                                                grid: grid, xxs: false, signs: blockSigns, s) else {
                    scales[ib] = 0
                    continue
                }
                for k in 0..<8 {
                    let g = grid.index(L + 4 * k)
                    qs[k] = UInt8(g & 255)
                    qh[ib] |= UInt8(g >> 8) << k
                }
                qs += 8
                for k in 0..<4 { signs[k] = blockSigns[k] }
                signs += 4
                scales[ib] = scale
                maxScale = maxScale > scale ? maxScale : scale
            }
            if maxScale == 0 { continue }
            let d = maxScale / 31
            yb.storeHalf(fp16(d * 1.033), at: 0)
            let id = 1 / d
            for ib in stride(from: 0, to: 8, by: 2) {
                yb[106 + ib / 2] = UInt8(scaleLevel(scales[ib], id) | scaleLevel(scales[ib + 1], id) << 4)
            }
        }
    }
}

extension GGMLFormat {
    public static let iq3_XXS = GGMLFormat(.iq3_XXS, activation: .q8_K, quantize: { x, y, n, qw, s in
        IQ3Quants.quantizeIQ3_XXS(x, y, n: n, qw: qw, s)
    }, dequantize: IQDequant.iq3xxs)
    public static let iq3_S = GGMLFormat(.iq3_S, activation: .q8_K, quantize: { x, y, n, qw, s in
        IQ3Quants.quantizeIQ3_S(x, y, n: n, qw: qw, s)
    }, dequantize: IQDequant.iq3s)
}
