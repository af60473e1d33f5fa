import QuantaCore
@testable import QuantaFormats
import TestSupport
import XCTest

/// The faster paths produce the reference paths' bits.
final class FastPathTests: XCTestCase {
    /// Whole tensors dequantize on several workers to the bits of the block-by-block path, the
    /// last worker's range shorter; too few bytes are refused before any work.
    func testThreadedDequantizationMatchesBlocks() throws {
        var generator = SplitMix64(seed: 21)
        let count = 440 * 1792  // three workers of a quarter million values or more
        let values = (0..<count).map { _ in Float.random(in: -2...2, using: &generator) }
        for type in [GGMLType.q4_K, .q5_0, .q8_0, .q6_K] {
            let bytes = try Quantization.quantize(type, values, rowLength: 256 * 7, importance: nil)
            var reference = [Float](repeating: .nan, count: count)
            try bytes.withUnsafeBytes { raw in
                try reference.withUnsafeMutableBufferPointer { try Quantization.dequantize(type, raw.baseAddress!, count: count, into: $0.baseAddress!) }
            }
            XCTAssertEqual(Quantization.firstNonFinite(reference, count), nil, "\(type.name)")
            for threads in [1, 2, 3, 4] {
                let split = try bytes.withUnsafeBytes { try Quantization.dequantize(type, $0, count: count, threads: threads) }
                XCTAssertEqual(split.map(\.bitPattern), reference.map(\.bitPattern), "\(type.name) at \(threads) threads")
            }
            XCTAssertThrowsError(try bytes.withUnsafeBytes { try Quantization.dequantize(type, UnsafeRawBufferPointer(rebasing: $0.dropLast()), count: count, threads: 2) }) {
                XCTAssertEqual(($0 as? QuantaError)?.description,
                               "\(type.name): \(count) values need \(bytes.count) bytes, got \(bytes.count - 1)")
            }
        }
    }

    func testMakeQKXQuantsMatchesReference() {
        var generator = SplitMix64(seed: 11)
        let cases: [(n: Int, nmax: Int, rmin: Float, rdelta: Float, nstep: Int, mad: Bool)] = [
            (32, 15, -1, 0.1, 20, false), (32, 31, -0.5, 0.1, 15, false), (16, 3, -0.5, 0.1, 15, true),
            (32, 15, -0.9, 0.05, 36, false), (32, 31, -0.9, 0.05, 36, false), (16, 3, -0.9, 0.05, 36, false), (32, 15, -1, 0.1, 0, false),
        ]
        var x = [Float](repeating: 0, count: 32), w = [Float](repeating: 0, count: 32)
        var checked = 0
        for trial in 0..<4000 {
            let c = cases[trial % cases.count]
            let shift = Float.random(in: -0.5...0.5, using: &generator)
            for i in 0..<c.n {
                x[i] = Float.random(in: -1...1, using: &generator) * (i % 7 == 0 ? 5 : 1) + shift
                if trial % 13 == 0 { x[i] = abs(x[i]) + 0.25 }  // all positive: min clamps to 0
                w[i] = trial % 3 == 0 ? x[i] * x[i] : Float.random(in: 0...2, using: &generator)
            }
            if trial % 101 == 0 { for i in 0..<c.n { x[i] = 0.5 } }  // flat block
            var L1 = [UInt8](repeating: 0, count: 32), L2 = [UInt8](repeating: 0, count: 32)
            var A1 = [UInt8](repeating: 0, count: 128), A2 = [UInt8](repeating: 0, count: 128)
            var m1: Float = 0, m2: Float = 0
            let s1 = makeQKXQuantsReference(c.n, c.nmax, x, w, &L1, &m1, &A1, c.rmin, c.rdelta, c.nstep, c.mad)
            let s2 = makeQKXQuants(c.n, c.nmax, x, w, &L2, &m2, &A2, c.rmin, c.rdelta, c.nstep, c.mad)
            XCTAssertEqual(s1.bitPattern, s2.bitPattern, "trial \(trial) scale")
            XCTAssertEqual(m1.bitPattern, m2.bitPattern, "trial \(trial) min")
            XCTAssertEqual(L1, L2, "trial \(trial) levels")
            checked += 1
        }
        XCTAssertEqual(checked, 4000)
    }

    /// Sixteen groups per call: flat, all-positive, one-sign, zero and ordinary groups side by side.
    private func fillLanes(_ lanes: GroupLanes, n: Int, trial: Int, _ generator: inout SplitMix64,
                           _ xs: inout [[Float]], _ ws: inout [[Float]]) {
        for lane in 0..<GroupLanes.width {
            let shift = Float.random(in: -0.5...0.5, using: &generator)
            let kind = (trial + lane) % 9
            for i in 0..<n {
                var v = Float.random(in: -1...1, using: &generator) * (i % 7 == 0 ? 5 : 1) + shift
                if kind == 1 { v = abs(v) + 0.25 }
                if kind == 2 { v = -abs(v) - 0.25 }
                if kind == 3 { v = 0.5 }
                if kind == 4 { v = 0 }
                if kind == 5 { v = -0.75 }
                if kind == 6 { v *= 1e-30 }
                xs[lane][i] = v
                ws[lane][i] = trial % 3 == 0 ? v * v : Float.random(in: 0...2, using: &generator)
            }
            xs[lane].withUnsafeBufferPointer { x in
                ws[lane].withUnsafeBufferPointer { w in lanes.load(lane: lane, x.baseAddress!, w.baseAddress!, n) }
            }
        }
    }

    func testGroupLanesMatchTheScalarSearches() {
        var generator = SplitMix64(seed: 12)
        let lanes = GroupLanes()
        let cases: [(n: Int, nmax: Int, rmin: Float, rdelta: Float, nstep: Int, mad: Bool)] = [
            (32, 15, -1, 0.1, 20, false), (32, 31, -0.5, 0.1, 15, false), (16, 3, -0.5, 0.1, 15, true),
            (32, 15, -0.9, 0.05, 36, false), (32, 31, -0.9, 0.05, 36, false),
        ]
        var xs = [[Float]](repeating: [Float](repeating: 0, count: 32), count: 16), ws = xs
        var lanesChecked = 0
        for trial in 0..<600 {
            let c = cases[trial % cases.count]
            fillLanes(lanes, n: c.n, trial: trial, &generator, &xs, &ws)
            XCTAssertTrue(lanes.makeQKX(c.n, c.nmax, rmin: c.rmin, rdelta: c.rdelta, nstep: c.nstep, useMAD: c.mad), "trial \(trial)")
            for lane in 0..<GroupLanes.width {
                var L = [UInt8](repeating: 0, count: 32), A = [UInt8](repeating: 0, count: 32), got = L
                var min: Float = 0
                let scale = makeQKXQuantsReference(c.n, c.nmax, xs[lane], ws[lane], &L, &min, &A, c.rmin, c.rdelta, c.nstep, c.mad)
                XCTAssertEqual(lanes.scale[lane].bitPattern, scale.bitPattern, "trial \(trial) lane \(lane) scale")
                XCTAssertEqual(lanes.theMin[lane].bitPattern, min.bitPattern, "trial \(trial) lane \(lane) min")
                lanes.storeLevels(lane: lane, &got, c.n)
                XCTAssertEqual(got, L, "trial \(trial) lane \(lane) levels")
                lanesChecked += 1
            }
        }
        for trial in 0..<400 {
            let (n, nmax, weighted) = [(16, 32, false), (16, 32, true), (16, 4, true), (32, 8, true)][trial % 4]
            fillLanes(lanes, n: n, trial: trial, &generator, &xs, &ws)
            lanes.makeQX(n, nmax, weighted: weighted)
            for lane in 0..<GroupLanes.width {
                var L = [Int8](repeating: 0, count: 32), got = L
                let scale = ws[lane].withUnsafeBufferPointer { w in
                    makeQXQuants(n, nmax, xs[lane], &L, 1, weighted ? w.baseAddress! : nil)
                }
                XCTAssertEqual(lanes.scale[lane].bitPattern, scale.bitPattern, "qx trial \(trial) lane \(lane) scale")
                lanes.storeLevels(lane: lane, &got, n)
                XCTAssertEqual(got, L, "qx trial \(trial) lane \(lane) levels")
                lanesChecked += 1
            }
        }
        for trial in 0..<200 {
            fillLanes(lanes, n: 16, trial: trial, &generator, &xs, &ws)
            lanes.makeQ3(16, 4)
            for lane in 0..<GroupLanes.width {
                var L = [Int8](repeating: 0, count: 16), got = L
                let scale = makeQ3Quants(16, 4, xs[lane], &L, true)
                XCTAssertEqual(lanes.scale[lane].bitPattern, scale.bitPattern, "q3 trial \(trial) lane \(lane) scale")
                lanes.storeLevels(lane: lane, &got, 16)
                XCTAssertEqual(got, L, "q3 trial \(trial) lane \(lane) levels")
                lanesChecked += 1
            }
        }
        for trial in 0..<200 {
            fillLanes(lanes, n: 32, trial: trial, &generator, &xs, &ws)
            lanes.searchIQ4(32, ntry: 7)
            for lane in 0..<GroupLanes.width {
                let scale = xs[lane].withUnsafeBufferPointer { x in
                    ws[lane].withUnsafeBufferPointer { w in IQ4Quants.searchBlockReference(x.baseAddress!, w.baseAddress!, ntry: 7) }
                }
                XCTAssertEqual(lanes.scale[lane].bitPattern, scale.bitPattern, "iq4 trial \(trial) lane \(lane) scale")
                lanesChecked += 1
            }
        }
        XCTAssertEqual(lanesChecked, 22_400)
    }

    /// A search that rounds values beyond the limit (±2²² in use, where ggml's integer trick and
    /// the float rounding part ways) says so, and the block quantizers then take the scalar path.
    func testGroupLanesReportRoundingOutOfRange() {
        var generator = SplitMix64(seed: 13)
        let lanes = GroupLanes()
        var xs = [[Float]](repeating: [Float](repeating: 0, count: 32), count: 16), ws = xs
        fillLanes(lanes, n: 32, trial: 0, &generator, &xs, &ws)
        XCTAssertTrue(lanes.makeQKX(32, 15, rmin: -1, rdelta: 0.1, nstep: 20, useMAD: false))
        // The last candidate scales reach nmax + rmin + rdelta·nstep = 16 times the range.
        XCTAssertTrue(lanes.makeQKX(32, 15, rmin: -1, rdelta: 0.1, nstep: 20, useMAD: false, roundingLimit: 16.5))
        XCTAssertFalse(lanes.makeQKX(32, 15, rmin: -1, rdelta: 0.1, nstep: 20, useMAD: false, roundingLimit: 15.5))
    }
}

final class QuantizationInputTests: XCTestCase {
    func testNonFiniteInputIsAnErrorNotACrash() {
        var values = [Float](repeating: 0.5, count: 64)
        values[37] = .nan
        for type in Quantization.quantizableTypes where type.blockSize <= 32 {
            XCTAssertThrowsError(try Quantization.quantize(type, values, rowLength: 32), type.name) { error in
                XCTAssertEqual("\(error)", "row 1, column 5: holds nan, not a finite number", type.name)
            }
        }
        values[37] = -.infinity
        XCTAssertThrowsError(try Quantization.quantize(.q4_0, values, rowLength: 64)) { error in
            XCTAssertEqual("\(error)", "row 0, column 37: holds -inf, not a finite number")
        }
    }
}

/// The vector legacy quantizers give the scalar ones' bytes, edge blocks included.
final class LegacyVectorTests: XCTestCase {
    /// Blocks of 32: random, one-signed, with signed zeros, flat, tiny (subnormal scales whose
    /// inverse overflows: NaN and infinities reach the integer casts), huge.
    static func blocks(_ generator: inout SplitMix64) -> [Float] {
        var values: [Float] = []
        for kind in 0..<400 {
            for j in 0..<32 {
                var v = Float.random(in: -1...1, using: &generator) * (j % 5 == 0 ? 4 : 1)
                switch kind % 12 {
                case 1: v = abs(v)
                case 2: v = -abs(v)
                case 3: v = j % 3 == 0 ? 0 : abs(v)
                case 4: v = j % 3 == 1 ? -0.0 : (j % 3 == 2 ? 0 : abs(v))
                case 5: v = j % 2 == 0 ? -0.0 : -abs(v)
                case 6: v = 0.25
                case 7: v = j == 9 ? 1e-44 : 0
                case 8: v = Float(bitPattern: UInt32(j % 4)) * (j % 2 == 0 ? 1 : -1)
                case 9: v *= 3e38
                case 10: v = j % 2 == 0 ? 0 : -0.0
                case 11: v = j == 4 ? -2e-39 : (j == 20 ? 2e-39 : v * 1e-39)
                default: break
                }
                values.append(v)
            }
        }
        return values
    }

    func testVectorQuantizersMatchScalar() {
        var generator = SplitMix64(seed: 21)
        let x = Self.blocks(&generator)
        let blocks = x.count / 32
        let s = QuantScratch()
        let cases: [(name: String, bytes: Int, vector: (UnsafePointer<Float>, UnsafeMutablePointer<UInt8>) -> Void,
                     scalar: (UnsafePointer<Float>, UnsafeMutablePointer<UInt8>) -> Void)] = [
            ("Q4_0", 18, { LegacyVectorQuants.quantizeQ4_0($0, $1, blocks: blocks) }, { LegacyQuants.quantizeQ4_0($0, $1, blocks: blocks) }),
            ("Q4_1", 20, { LegacyVectorQuants.quantizeQ4_1($0, $1, blocks: blocks) }, { LegacyQuants.quantizeQ4_1($0, $1, blocks: blocks) }),
            ("Q5_0", 22, { LegacyVectorQuants.quantizeQ5_0($0, $1, blocks: blocks, s) }, { LegacyQuants.quantizeQ5_0($0, $1, blocks: blocks, s) }),
            ("Q5_1", 24, { LegacyVectorQuants.quantizeQ5_1($0, $1, blocks: blocks, s) }, { LegacyQuants.quantizeQ5_1($0, $1, blocks: blocks, s) }),
            ("Q8_0", 34, { LegacyVectorQuants.quantizeQ8_0($0, $1, blocks: blocks) }, { LegacyQuants.quantizeQ8_0($0, $1, blocks: blocks) }),
        ]
        for c in cases {
            var fast = [UInt8](repeating: 0xAA, count: c.bytes * blocks), slow = [UInt8](repeating: 0x55, count: c.bytes * blocks)
            x.withUnsafeBufferPointer { xp in
                fast.withUnsafeMutableBufferPointer { c.vector(xp.baseAddress!, $0.baseAddress!) }
                slow.withUnsafeMutableBufferPointer { c.scalar(xp.baseAddress!, $0.baseAddress!) }
            }
            for b in 0..<blocks where fast[(c.bytes * b)..<(c.bytes * (b + 1))] != slow[(c.bytes * b)..<(c.bytes * (b + 1))] {
                XCTFail("\(c.name) block \(b) (kind \(b % 12)): \(Array(fast[(c.bytes * b)..<(c.bytes * (b + 1))])) vs \(Array(slow[(c.bytes * b)..<(c.bytes * (b + 1))]))")
                break
            }
        }
    }

    /// ggml's casts on x86-64 for a block whose scale is subnormal: 1/d overflows, 0 * inf is NaN,
    /// and `(int8_t)` of NaN or infinity is the low byte of 0x80000000. No trap.
    func testSubnormalScaleFollowsCCasts() throws {
        var block = [Float](repeating: 0, count: 32)
        block[3] = 1e-44
        let q4 = try Quantization.quantize(.q4_0, block, rowLength: 32)
        XCTAssertEqual(q4.count, 18)
        XCTAssertEqual(Array(q4[0..<2]), [0x00, 0x80], "d = -1e-44/8 rounds to -0 in f16")
        XCTAssertEqual(Array(q4[2...]), [UInt8](repeating: 0, count: 16), "every (int8_t) cast of NaN or -inf is 0")
        let q8 = try Quantization.quantize(.q8_0, block, rowLength: 32)
        XCTAssertEqual(Array(q8[2...]), [UInt8](repeating: 0, count: 32))
    }
}

/// The vector Q8_K activation round trip gives the scalar one's floats.
final class ActivationRoundTripTests: XCTestCase {
    func testQ8_KVectorMatchesReference() {
        var generator = SplitMix64(seed: 31)
        var checked = 0
        for kind in 0..<60 {
            var x = (0..<QK_K).map { _ in Float.random(in: -3...3, using: &generator) }
            if kind % 6 == 1 { for j in 0..<QK_K where j % 3 == 0 { x[j] = 0 } }
            if kind % 6 == 2 { x[77] = -abs(x[77]) - 5; x[200] = abs(x[77]) }  // the same magnitude twice, signs differ
            if kind % 6 == 3 { x = [Float](repeating: 0, count: QK_K) }
            if kind % 6 == 4 { x = x.map { $0 * 1e-20 } }
            var fast = x, slow = x
            let exact = fast.withUnsafeMutableBufferPointer { ActivationQuantization.roundTripQ8_K($0.baseAddress!) }
            slow.withUnsafeMutableBufferPointer { ActivationQuantization.roundTripQ8_KReference($0.baseAddress!) }
            XCTAssertTrue(exact, "kind \(kind)")
            XCTAssertEqual(fast.map(\.bitPattern), slow.map(\.bitPattern), "kind \(kind)")
            checked += 1
        }
        XCTAssertEqual(checked, 60)
        // A subnormal largest value: -127 / max is infinite, the vector form declines.
        var tiny = [Float](repeating: 0, count: QK_K)
        tiny[5] = 1e-40
        XCTAssertFalse(tiny.withUnsafeMutableBufferPointer { ActivationQuantization.roundTripQ8_K($0.baseAddress!) })
        XCTAssertEqual(tiny[5], 1e-40, "left untouched")
    }
}


/// F16 and BF16 storage (vector loops) give the scalar conversions' bits.
final class HalfStorageTests: XCTestCase {
    func testHalfStorageMatchesScalarConversions() throws {
        var generator = SplitMix64(seed: 41)
        var values: [Float] = [0, -0.0, 1e-45, -1e-40, 65504, 65520, -70000, 3.4e38, 1.0009766, 1.0014648, 0x1p-25, Float(0x1p-25).nextUp]
        while values.count < 16 * 20 + 7 {
            let v = Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()))
            values.append(v.isFinite ? v : 1)
        }
        for (type, convert) in [(GGMLType.bf16, HalfConversion.floatToBF16 as (Float) -> UInt16), (.f16, HalfConversion.floatToF16)] {
            let bytes = try Quantization.quantize(type, values, rowLength: values.count)
            let expected = values.flatMap { v -> [UInt8] in let h = convert(v); return [UInt8(h & 0xFF), UInt8(h >> 8)] }
            XCTAssertEqual(bytes, expected, type.name)
        }
    }
}
