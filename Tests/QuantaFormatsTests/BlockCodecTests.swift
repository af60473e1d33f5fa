import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel
import TestSupport
import XCTest

/// Fit (the row quantizer) then encode against the stored parameters (the codec), on the bundled
/// model's weights, with and without the golden importance matrix.
final class BlockCodecTests: XCTestCase {
    /// Byte ranges of each block's parameters (everything else is levels).
    static let headers: [GGMLType: [Range<Int>]] = [
        .q8_0: [0..<2], .q4_0: [0..<2], .q5_0: [0..<2], .q4_1: [0..<4], .q5_1: [0..<4],
        .iq4_NL: [0..<2], .iq4_XS: [0..<8], .q2_K: [0..<16, 80..<84], .q3_K: [96..<110], .q4_K: [0..<16], .q5_K: [0..<16], .q6_K: [192..<210],
    ]

    func testEncodeAgainstFittedParameters() throws {
        let source = try HuggingFaceSource(path: TestSupport.austenModel)
        let importance = try ImportanceMatrix.read(TestSupport.golden("austen-imatrix.gguf"))
        let names = ["blk.0.attn_q.weight", "blk.3.ffn_down.weight", "blk.5.attn_v.weight"]
        XCTAssertEqual(Set(BlockFormats.all.filter { $0.codec != nil }.map(\.type)), Set(BlockCodecTests.headers.keys))
        for format in BlockFormats.all where format.codec != nil {
            let type = format.type, size = type.bytesPerBlock, n = type.blockSize
            let codec = try XCTUnwrap(format.codec)
            var blocks = 0, identical = 0
            for name in names {
                let values = try source.values(name)
                let row = try XCTUnwrap(source.tensors.first { $0.name == name }).dimensions[0]
                for weights in [nil, importance.importance(for: name)] {
                    let fitted = try Quantization.quantize(type, values, rowLength: row, importance: weights)
                    var encoded = fitted
                    let levels = UnsafeMutablePointer<Int32>.allocate(capacity: n)
                    defer { levels.deallocate() }
                    values.withUnsafeBufferPointer { x in
                        encoded.withUnsafeMutableBufferPointer { y in
                            for b in 0..<(values.count / n) { format.encode(x.baseAddress! + b * n, into: y.baseAddress! + b * size, levels: levels) }
                        }
                    }
                    let ours = try encoded.withUnsafeBytes { try Quantization.dequantize(type, $0, count: values.count) }
                    let theirs = try fitted.withUnsafeBytes { try Quantization.dequantize(type, $0, count: values.count) }
                    for b in 0..<(values.count / n) {
                        blocks += 1
                        let range = (b * size)..<((b + 1) * size)
                        if encoded[range] == fitted[range] { identical += 1; continue }
                        for h in BlockCodecTests.headers[type]! {
                            XCTAssertEqual(encoded[(range.lowerBound + h.lowerBound)..<(range.lowerBound + h.upperBound)],
                                           fitted[(range.lowerBound + h.lowerBound)..<(range.lowerBound + h.upperBound)], "\(type.name): header moved")
                        }
                        // Nearest levels under the stored parameters are never worse than ggml's choice.
                        var errOurs = 0.0, errTheirs = 0.0
                        for j in (b * n)..<((b + 1) * n) {
                            errOurs += Double(ours[j] - values[j]) * Double(ours[j] - values[j])
                            errTheirs += Double(theirs[j] - values[j]) * Double(theirs[j] - values[j])
                        }
                        XCTAssertLessThanOrEqual(errOurs, errTheirs * (1 + 1e-6), "\(type.name) \(name) block \(b)")
                    }
                    // The codec's values are the dequantizer's, level for level.
                    encoded.withUnsafeBufferPointer { y in
                        values.withUnsafeBufferPointer { x in
                            for b in stride(from: 0, to: values.count / n, by: 7) {
                                let block = y.baseAddress! + b * size
                                for j in 0..<n {
                                    let q = codec.level(x[b * n + j], j, block)
                                    XCTAssertEqual(codec.value(q, j, block), ours[b * n + j], "\(type.name) block \(b) value \(j)")
                                }
                            }
                        }
                    }
                }
            }
            print("\(type.name): fit + encode equals ggml's bytes in \(identical) of \(blocks) blocks")
            // ggml's k-quants re-derive every level from the stored scales: the same bytes.
            if [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K].contains(type) { XCTAssertEqual(identical, blocks, type.name) }
        }
    }
}
