import QuantaCore

// Readers for the grid-based IQ formats and the ternary formats (ggml's dequantize_row_*).
// Layouts (bytes per 256): IQ2_XXS 66 = d, qs:u16[32]; IQ2_XS 74 = d, qs:u16[32], scales[8];
// IQ2_S 82 = d, qs[64] (indices, then signs), qh[8], scales[8]; IQ3_XXS 98 = d, qs[64],
// scales_and_signs[32]; IQ3_S 110 = d, qs[64], qh[8], signs[32], scales[4];
// IQ1_S 50 = d, qs[32], qh:u16[8]; IQ1_M 56 = qs[32], qh[16], scales[8] (d inside);
// TQ1_0 54 = qs[48], qh[4], d; TQ2_0 66 = qs[64], d.

enum IQDequant {
    static let iq1sDelta: Float = 0.125

    @inline(__always) static func sign(_ signs: UInt8, _ j: Int) -> Float { signs & (1 << j) != 0 ? -1 : 1 }

    static func iq2xxs(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 66 * i
            let d = xb.halfFloat(at: 0)
            for ib in 0..<8 {
                let a0 = xb.u32(at: 2 + 8 * ib), a1 = xb.u32(at: 6 + 8 * ib)
                let db = d * (0.5 + Float(a1 >> 28)) * 0.25
                for l in 0..<4 {
                    let grid = Int(UInt8(truncatingIfNeeded: a0 >> (8 * l))) * 8
                    let signs = IQGrids.ksigns[Int((a1 >> (7 * l)) & 127)]
                    for j in 0..<8 { out[j] = db * Float(IQGrids.iq2xxs[grid + j]) * sign(signs, j) }
                    out += 8
                }
            }
        }
    }

    static func iq2xs(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 74 * i
            let d = xb.halfFloat(at: 0)
            for ib in 0..<8 {
                let scale = xb[66 + ib]
                let db = [d * (0.5 + Float(scale & 0xF)) * 0.25, d * (0.5 + Float(scale >> 4)) * 0.25]
                for l in 0..<4 {
                    let q = Int(xb.half(at: 2 + 2 * (4 * ib + l)))
                    let grid = (q & 511) * 8
                    let signs = IQGrids.ksigns[q >> 9]
                    for j in 0..<8 { out[j] = db[l / 2] * Float(IQGrids.iq2xs[grid + j]) * sign(signs, j) }
                    out += 8
                }
            }
        }
    }

    static func iq2s(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 82 * i
            let d = xb.halfFloat(at: 0)
            let qs = xb + 2, signs = xb + 2 + 32, qh = xb + 66, scales = xb + 74
            for ib in 0..<8 {
                let db = [d * (0.5 + Float(scales[ib] & 0xF)) * 0.25, d * (0.5 + Float(scales[ib] >> 4)) * 0.25]
                for l in 0..<4 {
                    let grid = (Int(qs[4 * ib + l]) | (Int(qh[ib]) << (8 - 2 * l)) & 0x300) * 8
                    for j in 0..<8 { out[j] = db[l / 2] * Float(IQGrids.iq2s[grid + j]) * sign(signs[4 * ib + l], j) }
                    out += 8
                }
            }
        }
    }

    static func iq3xxs(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 98 * i
            let d = xb.halfFloat(at: 0)
            let qs = xb + 2, scalesAndSigns = xb + 2 + 64
            for ib in 0..<8 {
                let aux = UnsafePointer(scalesAndSigns).u32(at: 4 * ib)
                let db = d * (0.5 + Float(aux >> 28)) * 0.5
                for l in 0..<4 {
                    let signs = IQGrids.ksigns[Int((aux >> (7 * l)) & 127)]
                    let g1 = Int(qs[8 * ib + 2 * l]) * 4, g2 = Int(qs[8 * ib + 2 * l + 1]) * 4
                    for j in 0..<4 {
                        out[j] = db * Float(IQGrids.iq3xxs[g1 + j]) * sign(signs, j)
                        out[j + 4] = db * Float(IQGrids.iq3xxs[g2 + j]) * sign(signs, j + 4)
                    }
                    out += 8
                }
            }
        }
    }

    static func iq3s(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 110 * i
            let d = xb.halfFloat(at: 0)
            let qs = xb + 2, qh = xb + 66, signs = xb + 74, scales = xb + 106
            for ib in 0..<8 {
                let scale = ib % 2 == 0 ? scales[ib / 2] & 0xF : scales[ib / 2] >> 4
                let db = d * Float(1 + 2 * Int(scale))
                let q = qs + 8 * ib, h = Int(qh[ib]), s = signs + 4 * ib
                for l in 0..<4 {
                    let g1 = (Int(q[2 * l]) | ((h << (8 - 2 * l)) & 256)) * 4
                    let g2 = (Int(q[2 * l + 1]) | ((h << (7 - 2 * l)) & 256)) * 4
                    for j in 0..<4 {
                        out[j] = db * Float(IQGrids.iq3s[g1 + j]) * sign(s[l], j)
                        out[j + 4] = db * Float(IQGrids.iq3s[g2 + j]) * sign(s[l], j + 4)
                    }
                    out += 8
                }
            }
        }
    }

    static func iq1s(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 50 * i
            let d = xb.halfFloat(at: 0)
            let qs = xb + 2
            for ib in 0..<8 {
                let qh = Int(xb.half(at: 34 + 2 * ib))
                let dl = d * Float(2 * ((qh >> 12) & 7) + 1)
                let delta = qh & 0x8000 != 0 ? -iq1sDelta : iq1sDelta
                for l in 0..<4 {
                    let grid = (Int(qs[4 * ib + l]) | ((qh >> (3 * l)) & 7) << 8) * 8
                    for j in 0..<8 { out[j] = dl * (Float(IQGrids.iq1s[grid + j]) + delta) }
                    out += 8
                }
            }
        }
    }

    static func iq1m(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 56 * i
            let qs = xb, qh = xb + 32
            let sc = (0..<4).map { Int(xb.half(at: 48 + 2 * $0)) }
            let packed = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000)
            let d = fp32(UInt16(packed))
            for ib in 0..<8 {
                let dl1 = d * Float(2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1)
                let dl2 = d * Float(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1)
                let q = qs + 4 * ib, h = qh + 2 * ib
                let index = [Int(q[0]) | (Int(h[0]) << 8) & 0x700, Int(q[1]) | (Int(h[0]) << 4) & 0x700,
                             Int(q[2]) | (Int(h[1]) << 8) & 0x700, Int(q[3]) | (Int(h[1]) << 4) & 0x700]
                let delta = [h[0] & 0x08, h[0] & 0x80, h[1] & 0x08, h[1] & 0x80].map { $0 != 0 ? -iq1sDelta : iq1sDelta }
                for l in 0..<4 {
                    let dl = l < 2 ? dl1 : dl2
                    for j in 0..<8 { out[j] = dl * (Float(IQGrids.iq1s[index[l] * 8 + j]) + delta[l]) }
                    out += 8
                }
            }
        }
    }

    static func tq1(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        let pow3: [UInt8] = [1, 3, 9, 27, 81, 243]
        var out = y
        @inline(__always) func trit(_ byte: UInt8, _ n: Int) -> Float {
            let q = byte &* pow3[n]
            return Float(Int((UInt16(q) * 3) >> 8) - 1)
        }
        for i in 0..<blocks {
            let xb = x + 54 * i
            let d = xb.halfFloat(at: 52)
            for n in 0..<5 { for m in 0..<32 { out.pointee = trit(xb[m], n) * d; out += 1 } }
            for n in 0..<5 { for m in 0..<16 { out.pointee = trit(xb[32 + m], n) * d; out += 1 } }
            for n in 0..<4 { for j in 0..<4 { out.pointee = trit(xb[48 + j], n) * d; out += 1 } }
        }
    }

    static func tq2(_ x: UnsafePointer<UInt8>, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        var out = y
        for i in 0..<blocks {
            let xb = x + 66 * i
            let d = xb.halfFloat(at: 64)
            for j in stride(from: 0, to: 64, by: 32) {
                for l in 0..<4 {
                    for m in 0..<32 {
                        out.pointee = Float(Int((xb[j + m] >> (2 * l)) & 3) - 1) * d
                        out += 1
                    }
                }
            }
        }
    }
}
