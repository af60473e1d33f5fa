import Dispatch
import QuantaCore

extension Quantization {
    /// Types Quanta reads back to fp32.
    public static func canDequantize(_ type: GGMLType) -> Bool { BlockFormats.format(type) != nil }

    /// Dequantizes `count` values (a multiple of the block size) stored in `x` into `y`.
    public static func dequantize(_ type: GGMLType, _ x: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) throws {
        try decoder(type, count: count).dequantize(x.assumingMemoryBound(to: UInt8.self), y, blocks: count / type.blockSize)
    }

    /// The block format that reads `type`, once `count` values are known to be whole blocks of it.
    private static func decoder(_ type: GGMLType, count: Int) throws -> BlockFormat {
        guard let format = BlockFormats.format(type) else {
            throw QuantaError.unsupported(type.name, "Quanta cannot read \(type.name) tensors yet")
        }
        guard count % type.blockSize == 0 else {
            throw QuantaError(.invalidArgument, type.name, "\(count) values are not whole blocks of \(type.blockSize)")
        }
        return format
    }

    /// Dequantizes a whole tensor's bytes, its blocks split into `threads` contiguous ranges
    /// (each block is decoded on its own, so the values do not depend on the count).
    public static func dequantize(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int, threads: Int = 1) throws -> [Float] {
        let needed = type.byteCount(elements: count)
        guard bytes.count >= needed else {
            throw QuantaError(.invalidArgument, type.name, "\(count) values need \(needed) bytes, got \(bytes.count)")
        }
        let format = try decoder(type, count: count)
        let blocks = count / type.blockSize, blockBytes = type.bytesPerBlock
        // Ranges below a quarter million values are not worth a worker's wake-up.
        let workers = max(1, min(threads, count / 262_144))
        let perWorker = (blocks + workers - 1) / workers
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                nonisolated(unsafe) let (x, y) = (bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), buffer.baseAddress!)
                let run: @Sendable (Int) -> Void = { worker in
                    let first = worker * perWorker, n = min(blocks, first + perWorker) - first
                    if n > 0 { format.dequantize(x + first * blockBytes, y + first * type.blockSize, blocks: n) }
                }
                if workers == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: run) }
            }
            initialized = count
        }
    }
}
