import QuantaCore
import QuantaFormats
import QuantaIO
import TestSupport
import XCTest

/// Quantized bytes and dequantized values against gguf-py (PyPI `gguf`), the Python oracle.
final class OracleTests: XCTestCase {
    /// Every tensor of the bundled model plus random rows with heavy outliers and zero blocks.
    static func inputs() throws -> [(name: String, values: [Float], rowLength: Int)] {
        let model = try SafetensorsFile(path: TestSupport.austenModel + "/model.safetensors")
        var result = try model.tensors.map { info in
            (info.name, try model.floatTensor(info.name).storage, info.shape.last!)
        }
        var generator = SplitMix64(seed: 17)
        var outliers = (0..<(64 * 512)).map { _ in Float.random(in: -1...1, using: &generator) }
        for i in stride(from: 0, to: outliers.count, by: 97) { outliers[i] *= 1000 }
        for i in 512..<(512 + 256) { outliers[i] = 0 }
        outliers[5000] = 65000
        result.append(("random.outliers", outliers, 512))
        return result
    }

    func testLegacyTypesEqualGGUFPyBytes() throws {
        let folder = try TestSupport.temporaryFolder()
        let inputs = try OracleTests.inputs()
        try SafetensorsWriter.write(try inputs.map { try .init(name: $0.name, tensor: Tensor(shape: [$0.values.count / $0.rowLength, $0.rowLength], storage: $0.values)) },
                                    to: folder + "/in.safetensors")
        let types = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "BF16"]
        _ = try TestSupport.oracle("""
            import sys, gguf, numpy as np
            from safetensors.numpy import load_file, save_file
            t = load_file(sys.argv[1])
            out = {}
            for ty in sys.argv[3:]:
                for k, v in t.items():
                    out[ty + "/" + k] = np.frombuffer(gguf.quants.quantize(v, gguf.GGMLQuantizationType[ty]).tobytes(), dtype=np.uint8)
            save_file(out, sys.argv[2])
            """, [folder + "/in.safetensors", folder + "/out.safetensors"] + types)
        let reference = try SafetensorsFile(path: folder + "/out.safetensors")
        for typeName in types {
            let type = GGMLType(name: typeName)!
            for input in inputs {
                let ours = try Quantization.quantize(type, input.values, rowLength: input.rowLength)
                XCTAssertTrue(try reference.rawBytes("\(typeName)/\(input.name)").elementsEqual(ours), "\(typeName) \(input.name)")
            }
        }
    }

    /// Bytes for every readable type: our quantization of model rows where we quantize,
    /// random blocks with sane f16 scales otherwise.
    static func samples() throws -> [(GGMLType, [UInt8], Int)] {
        let model = try SafetensorsFile(path: TestSupport.austenModel + "/model.safetensors")
        let rows = Array(try model.floatTensor("model.layers.1.mlp.gate_proj.weight").storage.prefix(16 * 256))
        var generator = SplitMix64(seed: 3)
        var result: [(GGMLType, [UInt8], Int)] = []
        for type in GGMLType.allCases where Quantization.canDequantize(type) && ![.f64, .q8_1].contains(type) {
            let count = 4096
            if Quantization.canQuantize(type) {
                let importance = Quantization.requiresImportance(type) ? [Float](repeating: 1, count: 256) : nil
                result.append((type, try Quantization.quantize(type, rows, rowLength: 256, importance: importance), count))
                continue
            }
            var bytes = (0..<(count / type.blockSize * type.bytesPerBlock)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Scales as ggml places them, set to finite values so the comparison sees numbers.
            let scaleOffsets: [Int] = switch type {
            case .tq1_0: [52]
            case .tq2_0: [64]
            case .iq1_M: []
            default: [0]
            }
            for block in 0..<(count / type.blockSize) {
                for offset in scaleOffsets {
                    let h = HalfConversion.floatToF16(Float.random(in: 0.001...0.1, using: &generator))
                    bytes[block * type.bytesPerBlock + offset] = UInt8(h & 0xFF)
                    bytes[block * type.bytesPerBlock + offset + 1] = UInt8(h >> 8)
                }
                if type == .iq1_M {  // the f16 scale is spread over the top nibbles of scales[8]
                    let h = HalfConversion.floatToF16(Float.random(in: 0.001...0.1, using: &generator))
                    for k in 0..<4 {
                        let at = block * type.bytesPerBlock + 48 + 2 * k + 1
                        bytes[at] = (bytes[at] & 0x0F) | UInt8((h >> (4 * k)) & 0xF) << 4
                    }
                }
            }
            result.append((type, bytes, count))
        }
        return result
    }

    func testDequantizationEqualsGGUFPy() throws {
        let folder = try TestSupport.temporaryFolder()
        let samples = try OracleTests.samples()
        XCTAssertEqual(samples.count, 24)
        try SafetensorsWriter.write(try samples.map { try .init(name: $0.0.name, dtype: .u8, shape: [$0.1.count], data: $0.1) },
                                    to: folder + "/in.safetensors")
        _ = try TestSupport.oracle("""
            import sys, gguf, numpy as np
            from safetensors.numpy import load_file, save_file
            t = load_file(sys.argv[1])
            save_file({k: gguf.quants.dequantize(v, gguf.GGMLQuantizationType[k]).astype(np.float32).ravel() for k, v in t.items()}, sys.argv[2])
            """, [folder + "/in.safetensors", folder + "/out.safetensors"])
        let reference = try SafetensorsFile(path: folder + "/out.safetensors")
        for (type, bytes, count) in samples {
            let ours = try bytes.withUnsafeBytes { try Quantization.dequantize(type, $0, count: count) }
            let theirs = try reference.floatTensor(type.name).storage
            XCTAssertEqual(theirs.count, count, type.name)
            var worst: Float = 0
            for (a, b) in zip(ours, theirs) { worst = max(worst, abs(a - b) / max(abs(b), 1e-6)) }
            XCTAssertLessThanOrEqual(worst, 1e-6, "\(type.name): largest relative difference \(worst)")
        }
    }

    /// ggml's test-quantize-fns: synthetic data 0.1 + 2 cos(i + offset), error sqrt(Σd²)/n.
    /// ggml skips the types that need an importance matrix; here they get uniform importance
    /// and bounds set about 20 % above the errors measured when they were written.
    func testReconstructionErrorWithinGGMLThresholds() throws {
        let n = 32 * 128
        let data = (0..<n).map { Float(0.1) + 2 * cos(Float($0) + 0.1) }
        for type in Quantization.quantizableTypes {
            let importance = Quantization.requiresImportance(type) ? [Float](repeating: 1, count: n) : nil
            let bytes = try Quantization.quantize(type, data, rowLength: n, importance: importance)
            let back = try bytes.withUnsafeBytes { try Quantization.dequantize(type, $0, count: n) }
            var sum = 0.0
            for (a, b) in zip(data, back) { sum += Double(a - b) * Double(a - b) }
            let error = Float(sum.squareRoot()) / Float(n)
            let limit: Float = switch type {
            case .q2_K, .iq2_S: 0.0075  // ggml's MAX_QUANTIZATION_TOTAL_ERROR_2BITS
            case .q3_K, .iq3_S: 0.0040  // _3BITS
            case .iq3_XXS: 0.0050  // _3BITS_XXS
            case .iq2_XXS: 0.0090  // measured 0.00741
            case .iq2_XS: 0.0080  // 0.00651
            case .iq1_S: 0.0120  // 0.00975
            case .iq1_M: 0.0150  // 0.01220
            case .tq1_0, .tq2_0: 0.01  // ggml's MAX_QUANTIZATION_TOTAL_ERROR_TERNARY
            default: 0.002
            }
            XCTAssertLessThan(error, limit, type.name)
            if type == .f32 { XCTAssertEqual(error, 0) }
        }
    }
}

