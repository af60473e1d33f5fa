import QuantaCore
import QuantaFormats

/// GPTQ's rounding with a GGUF block format: when GPTQ reaches the first column of a block,
/// each row's block parameters (scales, mins, sub-block scales) are fitted by the format's own
/// quantizer on the current weights (with the importance given), and every column is then
/// encoded against them (`BlockCodec`), so the rounding error GPTQ propagates is exactly the
/// file's. With act order the blocks are fitted once, up front, from the original weights
/// (a block's parameters must exist before any of its columns is rounded, and act order may
/// reach a block's columns in any order).
public struct GGUFBlockQuantizer: GPTQColumnQuantizer {
    public let format: any BlockFormat
    public let codec: BlockCodec
    public let rows: Int
    public let columns: Int
    /// Per-column importance for the fit (llama.cpp's imatrix values), or nil.
    public let importance: [Float]?
    /// The tensor's bytes, row-major (`rows * rowBytes`).
    public private(set) var bytes: [UInt8]
    private var levels: [Int32]
    private var fitted: [Bool]
    private let original: [Float]?
    private let rowBytes: Int
    private let scratch = QuantScratch()

    public init(format: any BlockFormat, rows: Int, columns: Int, importance: [Float]?, original: UnsafeBufferPointer<Float>?) throws {
        guard let codec = format.codec, format.canQuantize else {
            throw QuantaError.unsupported(format.type.name, "GPTQ cannot encode \(format.type.name) against fitted parameters yet")
        }
        guard let rowBytes = format.type.rowBytes(columns) else {
            throw QuantaError(.invalidArgument, format.type.name, "rows of \(columns) are not whole blocks of \(format.type.blockSize)")
        }
        if let importance, importance.count != columns {
            throw QuantaError(.invalidArgument, format.type.name, "importance has \(importance.count) values for \(columns) columns")
        }
        self.format = format
        self.codec = codec
        self.rows = rows
        self.columns = columns
        self.importance = importance
        self.rowBytes = rowBytes
        self.original = original.map(Array.init)
        bytes = Array(repeating: 0, count: rows * rowBytes)
        levels = Array(repeating: 0, count: rows * columns)
        fitted = Array(repeating: false, count: columns / format.type.blockSize)
    }

    public mutating func begin(order: [Int]) {
        guard order != Array(0..<columns), let original else { return }
        // Act order: every block fitted before GPTQ starts, as llama-quantize would fit it.
        let n = columns
        for b in fitted.indices { fit(block: b) { r, c in original[r * n + c] } }
    }

    public mutating func prepare(column j: Int, weights: (Int) -> UnsafePointer<Float>) {
        let b = j / format.type.blockSize
        guard !fitted[b] else { return }
        let c0 = b * format.type.blockSize
        let cols = (c0..<(c0 + format.type.blockSize)).map(weights)
        fit(block: b) { r, c in cols[c - c0][r] }
    }

    /// Fits block `b` of every row from `value(row, column)` with the format's own quantizer.
    mutating func fit(block b: Int, _ value: (Int, Int) -> Float) {
        let (format, importance, rowBytes, rows, scratch) = (self.format, self.importance, self.rowBytes, self.rows, self.scratch)
        let size = format.type.blockSize, c0 = b * size
        var values = [Float](repeating: 0, count: size)
        bytes.withUnsafeMutableBufferPointer { out in
            for r in 0..<rows {
                for k in 0..<size { values[k] = value(r, c0 + k) }
                let block = out.baseAddress! + r * rowBytes + b * format.type.bytesPerBlock
                values.withUnsafeBufferPointer { x in
                    if let importance {
                        importance.withUnsafeBufferPointer { format.quantizeRow(x.baseAddress!, block, size, importance: $0.baseAddress! + c0, scratch) }
                    } else {
                        format.quantizeRow(x.baseAddress!, block, size, importance: nil, scratch)
                    }
                }
            }
        }
        fitted[b] = true
    }

    public mutating func quantize(column j: Int, _ w: UnsafePointer<Float>, into q: UnsafeMutablePointer<Float>) {
        let size = format.type.blockSize, b = j / size, position = j % size
        bytes.withUnsafeBufferPointer { out in
            for r in 0..<rows {
                let block = out.baseAddress! + r * rowBytes + b * format.type.bytesPerBlock
                let level = codec.level(w[r], position, block)
                levels[r * columns + j] = level
                q[r] = codec.value(level, position, block)
            }
        }
    }

    /// Packs the levels into the blocks: the tensor's GGUF bytes.
    public mutating func finish() -> [UInt8] {
        let (format, codec, rowBytes, rows, columns, levels) = (self.format, self.codec, self.rowBytes, self.rows, self.columns, self.levels)
        let size = format.type.blockSize
        bytes.withUnsafeMutableBufferPointer { out in
            levels.withUnsafeBufferPointer { l in
                for r in 0..<rows {
                    for b in 0..<(columns / size) {
                        codec.pack(l.baseAddress! + r * columns + b * size, out.baseAddress! + r * rowBytes + b * format.type.bytesPerBlock)
                    }
                }
            }
        }
        return bytes
    }
}
