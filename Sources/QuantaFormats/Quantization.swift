import Dispatch
import QuantaCore

/// Quantization and dequantization of GGML block formats: one entry point over the
/// per-type reference implementations, bit-identical with ggml's `ggml_quantize_chunk`.
///
/// Rows are independent, so rows are split across threads and the bytes do not depend on
/// the thread count.
public enum Quantization {
    /// Types Quanta writes (with and without an importance matrix), in registry order.
    public static var quantizableTypes: [GGMLType] { BlockFormats.all.filter(\.canQuantize).map(\.type) }

    public static func canQuantize(_ type: GGMLType) -> Bool { BlockFormats.format(type)?.canQuantize == true }

    /// Types ggml refuses to produce without an importance matrix.
    public static func requiresImportance(_ type: GGMLType) -> Bool { BlockFormats.format(type)?.requiresImportance == true }

    /// Whether an importance matrix changes the result for `type` (ggml ignores it for
    /// Q8_0 and the float types).
    public static func usesImportance(_ type: GGMLType) -> Bool { BlockFormats.format(type)?.usesImportance == true }

    /// Quantizes `rows` rows of `rowLength` values from `x` into `y`
    /// (`rows * type.rowBytes(rowLength)` bytes). `importance`, when given, holds one weight
    /// per column (`rowLength` values), as llama.cpp's imatrix does. Throws for NaN or infinite input.
    public static func quantize(_ type: GGMLType, _ x: UnsafePointer<Float>, rows: Int, rowLength: Int,
                                importance: UnsafePointer<Float>?, into y: UnsafeMutableRawPointer, threads: Int = 1) throws {
        guard let format = BlockFormats.format(type), format.canQuantize else {
            throw QuantaError.unsupported(type.name, "Quanta cannot quantize to \(type.name)")
        }
        guard let rowBytes = type.rowBytes(rowLength) else {
            throw QuantaError(.invalidArgument, type.name, "row length \(rowLength) is not a multiple of the block size \(type.blockSize)")
        }
        if format.requiresImportance && importance == nil {
            throw QuantaError(.invalidArgument, type.name, "\(type.name) requires an importance matrix")
        }
        // ggml's block quantizers assume finite input; NaN or infinity would make them trap or write
        // garbage. Each worker checks its rows before quantizing them; the first bad value is reported.
        nonisolated(unsafe) let source = x
        nonisolated(unsafe) let destination = y.assumingMemoryBound(to: UInt8.self)
        nonisolated(unsafe) let weights = importance
        let workers = max(1, min(threads, rows))
        let chunk = (rows + workers - 1) / max(workers, 1)
        let firstBad = UnsafeMutablePointer<Int>.allocate(capacity: workers)
        defer { firstBad.deallocate() }
        firstBad.initialize(repeating: -1, count: workers)
        nonisolated(unsafe) let bad = firstBad
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = worker * chunk
            let end = min(rows, start + chunk)
            guard start < end else { return }
            if let at = firstNonFinite(source + start * rowLength, (end - start) * rowLength) {
                bad[worker] = start * rowLength + at
                return
            }
            let scratch = QuantScratch()
            for row in start..<end {
                format.quantizeRow(source + row * rowLength, destination + row * rowBytes, rowLength, importance: weights, scratch)
            }
        }
        if let i = (0..<workers).lazy.map({ bad[$0] }).first(where: { $0 >= 0 }) {
            throw QuantaError(.invalidArgument, "row \(i / rowLength), column \(i % rowLength)", "holds \(x[i]), not a finite number")
        }
    }

    /// The index of the first NaN or infinity among `count` values, eight lanes at a time
    /// (x * 0 is 0 for every finite x and NaN otherwise).
    static func firstNonFinite(_ x: UnsafePointer<Float>, _ count: Int) -> Int? {
        let raw = UnsafeRawPointer(x)
        var i = 0
        while i + 64 <= count {
            var probe = SIMD8<Float>()
            for k in stride(from: 0, to: 64, by: 8) { probe += raw.loadUnaligned(fromByteOffset: 4 * (i + k), as: SIMD8<Float>.self) * 0 }
            if probe != SIMD8<Float>() { break }
            i += 64
        }
        while i < count {
            if !x[i].isFinite { return i }
            i += 1
        }
        return nil
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
