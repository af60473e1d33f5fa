import QuantaCore

extension Quantization {
    /// Types Quanta reads back to fp32.
    public static func canDequantize(_ type: GGMLType) -> Bool { BlockFormats.format(type) != nil }

    /// Dequantizes `count` values (a multiple of the block size) stored in `x` into `y`.
    public static func dequantize(_ type: GGMLType, _ x: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) throws {
        guard let format = BlockFormats.format(type) else {
            throw QuantaError.unsupported(type.name, "Quanta cannot read \(type.name) tensors yet")
        }
        guard count % type.blockSize == 0 else {
            throw QuantaError(.invalidArgument, type.name, "\(count) values are not whole blocks of \(type.blockSize)")
        }
        format.dequantize(x.assumingMemoryBound(to: UInt8.self), y, blocks: count / type.blockSize)
    }

    /// Dequantizes a whole tensor's bytes.
    public static func dequantize(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int) throws -> [Float] {
        let needed = type.byteCount(elements: count)
        guard bytes.count >= needed else {
            throw QuantaError(.invalidArgument, type.name, "\(count) values need \(needed) bytes, got \(bytes.count)")
        }
        var out = [Float](repeating: 0, count: count)
        if count > 0 {
            try out.withUnsafeMutableBufferPointer { try dequantize(type, bytes.baseAddress!, count: count, into: $0.baseAddress!) }
        }
        return out
    }
}
