import QuantaCore
import QuantaFormats
import QuantaIO
import TestSupport
import XCTest

/// MLX's affine layout against `mx.quantize` / `mx.dequantize` themselves.
final class MLXLayoutTests: XCTestCase {
    func testPackRoundTripsForEveryWidth() {
        var generator = SeededGenerator(seed: 5)
        for bits in MLXLayout.supportedBits {
            let (rows, columns) = (3, 64)
            let levels = (0..<(rows * columns)).map { _ in Int32(generator.below(1 << bits)) }
            let words = MLXLayout.pack(levels, rows: rows, columns: columns, bits: bits)
            XCTAssertEqual(words.count, rows * columns * bits / 32)
            XCTAssertEqual(MLXLayout.unpack(words, rows: rows, columns: columns, bits: bits), levels, "\(bits) bits")
        }
        // Level i sits at bit bits * i of its row: the second 3-bit level of row 0 is bits 3..5 of word 0.
        XCTAssertEqual(MLXLayout.pack([0, 5] + [Int32](repeating: 0, count: 30), rows: 1, columns: 32, bits: 3)[0], 5 << 3)
    }

    /// mx.quantize's words unpack and repack to the same words, and Quanta's dequantization of
    /// them equals mx.dequantize bit for bit (bits 2-8, groups 32/64/128).
    func testAgreesWithMLX() throws {
        _ = try TestSupport.mlxPython()
        let folder = try TestSupport.temporaryFolder()
        let cases = [(2, 32), (3, 64), (4, 64), (5, 128), (6, 32), (8, 128)]
        _ = try TestSupport.oracle("""
            import sys, numpy as np, mlx.core as mx
            from safetensors.numpy import save_file
            rng = np.random.RandomState(7)
            out = {}
            for bits, group in [\(cases.map { "(\($0.0), \($0.1))" }.joined(separator: ", "))]:
                w = mx.array(rng.randn(8, 256).astype(np.float32))
                q, s, b = mx.quantize(w, group_size=group, bits=bits)
                key = "%d_%d" % (bits, group)
                out["q" + key] = np.array(q); out["s" + key] = np.array(s); out["b" + key] = np.array(b)
                out["d" + key] = np.array(mx.dequantize(q, s, b, group_size=group, bits=bits))
                # float16 weights give float16 scales and biases, and MLX dequantizes in float16.
                q, s, b = mx.quantize(w.astype(mx.float16), group_size=group, bits=bits)
                out["qh" + key] = np.array(q); out["sh" + key] = np.array(s); out["bh" + key] = np.array(b)
                out["dh" + key] = np.array(mx.dequantize(q, s, b, group_size=group, bits=bits)).astype(np.float32)
            save_file(out, sys.argv[1])
            """, [folder + "/mlx.safetensors"])
        let file = try SafetensorsFile(path: folder + "/mlx.safetensors")
        for (bits, group) in cases {
            let key = "\(bits)_\(group)"
            let words = try file.integerTensor("q" + key, as: UInt32.self)
            XCTAssertEqual(words.shape, [8, 256 * bits / 32])
            let levels = MLXLayout.unpack(words.storage, rows: 8, columns: 256, bits: bits)
            XCTAssertEqual(MLXLayout.pack(levels, rows: 8, columns: 256, bits: bits), words.storage, key)
            let ours = try MLXLayout.dequantize(weight: words, scales: file.floatTensor("s" + key), biases: file.floatTensor("b" + key),
                                                bits: bits, groupSize: group, name: key)
            XCTAssertEqual(ours.storage, try file.floatTensor("d" + key).storage, key)
            XCTAssertEqual(try file.info("sh" + key).dtype, .f16)
            let half = try MLXLayout.dequantize(weight: file.integerTensor("qh" + key), scales: file.floatTensor("sh" + key),
                                                biases: file.floatTensor("bh" + key), bits: bits, groupSize: group, precision: .f16, name: key)
            XCTAssertEqual(half.storage, try file.floatTensor("dh" + key).storage, "f16 " + key)
        }
        XCTAssertThrowsError(try MLXLayout.dequantize(weight: file.integerTensor("q4_64"), scales: file.floatTensor("s2_32"),
                                                      biases: file.floatTensor("b2_32"), bits: 4, groupSize: 64, name: "L")) {
            XCTAssertEqual("\($0)", "L: shapes weight [8, 32], scales [8, 8] do not fit 4 bits in groups of 64")
        }
    }
}
