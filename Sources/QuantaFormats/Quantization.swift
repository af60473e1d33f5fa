import Dispatch
import QuantaCore

/// Quantization and dequantization of GGML block formats: one entry point over the
/// per-type reference implementations, bit-identical with ggml's `ggml_quantize_chunk`.
///
/// Rows are independent, so rows are split across threads and the bytes do not depend on
/// the thread count.
public enum Quantization {
    /// Types Quanta writes (with and without an importance matrix).
    public static let quantizableTypes: [GGMLType] = [
        .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_NL, .iq4_XS,
    ]

    public static func canQuantize(_ type: GGMLType) -> Bool { quantizableTypes.contains(type) }

    /// Types ggml refuses to produce without an importance matrix.
    public static func requiresImportance(_ type: GGMLType) -> Bool {
        type == .iq2_XXS || type == .iq2_XS || type == .iq1_S
    }

    /// Whether an importance matrix changes the result for `type` (ggml ignores it for
    /// Q8_0 and the float types).
    public static func usesImportance(_ type: GGMLType) -> Bool {
        canQuantize(type) && ![.f32, .f16, .bf16, .q8_0].contains(type)
    }

    /// Quantizes `rows` rows of `rowLength` values from `x` into `y`
    /// (`rows * type.rowBytes(rowLength)` bytes). `importance`, when given, holds one weight
    /// per column (`rowLength` values), as llama.cpp's imatrix does. Throws for NaN or infinite input.
    public static func quantize(_ type: GGMLType, _ x: UnsafePointer<Float>, rows: Int, rowLength: Int,
                                importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer, threads: Int = 1) throws {
        guard canQuantize(type) else {
            throw QuantaError.unsupported(type.name, "Quanta cannot quantize to \(type.name)")
        }
        guard let rowBytes = type.rowBytes(rowLength) else {
            throw QuantaError(.invalidArgument, type.name, "row length \(rowLength) is not a multiple of the block size \(type.blockSize)")
        }
        if requiresImportance(type) && importance == nil {
            throw QuantaError(.invalidArgument, type.name, "\(type.name) requires an importance matrix")
        }
        // ggml's block quantizers assume finite input; NaN or infinity would make them trap or write garbage.
        for i in 0..<(rows * rowLength) where !x[i].isFinite {
            throw QuantaError(.invalidArgument, "row \(i / rowLength), column \(i % rowLength)", "holds \(x[i]), not a finite number")
        }
        nonisolated(unsafe) let source = x
        nonisolated(unsafe) let destination = y.assumingMemoryBound(to: UInt8.self)
        nonisolated(unsafe) let weights = importance
        let workers = max(1, min(threads, rows))
        let chunk = (rows + workers - 1) / max(workers, 1)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = worker * chunk
            let end = min(rows, start + chunk)
            let scratch = QuantScratch()
            for row in stride(from: start, to: end, by: 1) {
                quantizeRow(type, source + row * rowLength, destination + row * rowBytes, rowLength, weights, scratch)
            }
        }
    }

    /// One row through the path ggml takes for `type` (reference without importance,
    /// the weighted implementation with it).
    static func quantizeRow(_ type: GGMLType, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, _ n: Int,
                            _ qw: UnsafePointer<Float>?, _ s: QuantScratch) {
        let blocks = n / type.blockSize
        switch type {
        case .f32:
            for i in 0..<n { y.advanced(by: 4 * i).withMemoryRebound(to: UInt32.self, capacity: 1) { $0.pointee = x[i].bitPattern.littleEndian } }
        case .f16:
            for i in 0..<n { y.storeHalf(HalfConversion.floatToF16(x[i]), at: 2 * i) }
        case .bf16:
            for i in 0..<n { y.storeHalf(HalfConversion.floatToBF16(x[i]), at: 2 * i) }
        case .q8_0: LegacyQuants.quantizeQ8_0(x, y, blocks: blocks)
        case .q4_0: if let qw { LegacyQuants.quantizeQ4_0(x, y, n: n, qw: qw, s) } else { LegacyQuants.quantizeQ4_0(x, y, blocks: blocks) }
        case .q4_1: if let qw { LegacyQuants.quantizeQ4_1(x, y, n: n, qw: qw, s) } else { LegacyQuants.quantizeQ4_1(x, y, blocks: blocks) }
        case .q5_0: if let qw { LegacyQuants.quantizeQ5_0(x, y, n: n, qw: qw, s) } else { LegacyQuants.quantizeQ5_0(x, y, blocks: blocks, s) }
        case .q5_1: if let qw { LegacyQuants.quantizeQ5_1(x, y, n: n, qw: qw, s) } else { LegacyQuants.quantizeQ5_1(x, y, blocks: blocks, s) }
        case .q2_K: if let qw { KQuantsLow.quantizeQ2_K(x, y, n: n, qw: qw, s) } else { KQuantsLow.quantizeQ2_K(x, y, blocks: blocks, s) }
        case .q3_K: if let qw { KQuantsLow.quantizeQ3_K(x, y, n: n, qw: qw, s) } else { KQuantsLow.quantizeQ3_K(x, y, blocks: blocks, s) }
        case .q4_K: KQuantsHigh.quantizeQ4_K(x, y, blocks: blocks, qw: qw, reference: qw == nil, s)
        case .q5_K: KQuantsHigh.quantizeQ5_K(x, y, blocks: blocks, qw: qw, reference: qw == nil, s)
        case .q6_K: KQuantsHigh.quantizeQ6_K(x, y, blocks: blocks, qw: qw, s)
        case .iq4_NL: IQ4Quants.quantizeIQ4_NL(x, y, n: n, qw: qw, s)
        case .iq4_XS: IQ4Quants.quantizeIQ4_XS(x, y, n: n, qw: qw, s)
        default: preconditionFailure("checked by canQuantize")
        }
    }

    /// Quantizes an array of `values.count / rowLength` rows.
    public static func quantize(_ type: GGMLType, _ values: [Float], rowLength: Int, importance: [Float]? = nil,
                                threads: Int = 1) throws -> [UInt8] {
        try values.withUnsafeBufferPointer { try quantize(type, $0, rowLength: rowLength, importance: importance, threads: threads) }
    }

    /// Quantizes `values.count / rowLength` rows held in a buffer (for example a memory map).
    public static func quantize(_ type: GGMLType, _ values: UnsafeBufferPointer<Float>, rowLength: Int, importance: [Float]? = nil,
                                threads: Int = 1) throws -> [UInt8] {
        guard rowLength > 0, values.count % rowLength == 0, let rowBytes = type.rowBytes(rowLength) else {
            throw QuantaError(.invalidArgument, type.name, "\(values.count) values do not form rows of \(rowLength) suited to \(type.name)")
        }
        if let importance, importance.count != rowLength {
            throw QuantaError(.invalidArgument, type.name, "importance has \(importance.count) values, rows have \(rowLength)")
        }
        let rows = values.count / rowLength
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        try { (source: UnsafeBufferPointer<Float>) in
            try out.withUnsafeMutableBytes { destination in
                if let importance {
                    try importance.withUnsafeBufferPointer {
                        try quantize(type, source.baseAddress!, rows: rows, rowLength: rowLength, importance: $0.baseAddress,
                                     into: destination.baseAddress!, threads: threads)
                    }
                } else {
                    try quantize(type, source.baseAddress!, rows: rows, rowLength: rowLength, importance: nil,
                                 into: destination.baseAddress!, threads: threads)
                }
            }
        }(values)
        return out
    }
}
