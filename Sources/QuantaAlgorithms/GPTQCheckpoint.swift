import Dispatch
import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel

/// GPTQ into the GPTQModel / AutoGPTQ "gptq" (v1) checkpoint layout: for every decoder linear
/// `<name>.qweight` (int32 `[in * bits / 32, out]`, 32/bits levels packed along the input
/// dimension, low bits first), `<name>.qzeros` (int32 `[groups, out * bits / 32]`, zero points
/// minus one packed along the output dimension), `<name>.scales` (f16 `[groups, out]`) and
/// `<name>.g_idx` (int32 `[in]`, each input column's group); embeddings, norms and the head in
/// f16; `quantize_config.json` and `quantization_config` in config.json. A weight dequantizes as
/// `scales[g_idx[i], j] * (q[i, j] - (qzeros[g_idx[i], j] + 1))`.
public enum GPTQCheckpoint {
    public struct Options: Sendable {
        public var grid = AffineQuantizer.Options()
        public var solver = GPTQOptions()

        public init() {}
    }

    public struct Summary: Sendable {
        public let quantized: Int
        public let seconds: Double
        /// Largest dampening a factorization needed (above the asked one when one failed).
        public let maxDamp: Double
    }

    /// Rows per independent GPTQ slice (a fixed size, so the bytes do not depend on the threads).
    static let rowsPerSlice = 64

    public static func write(model: ModelFolder, statistics: StatisticsFile, options: Options, to folder: String, threads: Int,
                             progress: ((Int, Int, String) -> Void)? = nil) throws -> Summary {
        let start = monotonicSeconds()
        guard GPTQLayout.supportedBits.contains(options.grid.bits) else {
            throw QuantaError.unsupported("--bits \(options.grid.bits)", "the gptq layout is written for 2, 3, 4 and 8 bits")
        }
        try FolderSink.checkFree(folder)
        let config = model.config
        let specs = config.architecture.tensors(config)
        var entries: [SafetensorsWriter.Entry] = []
        var quantized = 0, maxDamp = options.solver.damp
        let cache = FactorizationCache()
        for (index, spec) in specs.enumerated() {
            progress?(index + 1, specs.count, spec.hfName)
            guard model.weights.contains(spec.hfName) else { continue }
            let tensor = try model.weights.floatTensor(spec.hfName)
            defer { model.weights.release(spec.hfName) }
            guard let role = spec.role.linear, role != .output, spec.layer != nil,
                  let input = statistics.input(feeding: spec.ggufName),
                  let factorization = try cache.factorization(input.name, layer: input.layer, {
                      try statistics.gram(input).map { try GPTQ.factorize(gram: $0, columns: input.columns, options: options.solver) }
                  }) else {
                entries.append(try .init(name: spec.hfName, dtype: .f16, shape: tensor.shape, data: f16Bytes(tensor.storage)))
                continue
            }
            let (rows, columns) = (tensor.shape[0], tensor.shape[1])
            let layer = try solve(tensor.storage, rows: rows, factorization: factorization, options: options, threads: threads)
            maxDamp = max(maxDamp, layer.damp)
            let prefix = String(spec.hfName.dropLast(".weight".count))
            let bits = options.grid.bits, groups = layer.groups
            entries.append(try .init(name: prefix + ".qweight", dtype: .i32, shape: [columns * bits / 32, rows],
                                     data: int32Bytes(GPTQLayout.packLevels(layer.levels, rows: rows, columns: columns, bits: bits))))
            entries.append(try .init(name: prefix + ".qzeros", dtype: .i32, shape: [groups, rows * bits / 32],
                                     data: int32Bytes(GPTQLayout.packZeros(layer.zeros, groups: groups, rows: rows, bits: bits))))
            entries.append(try .init(name: prefix + ".scales", dtype: .f16, shape: [groups, rows], data: f16Bytes(layer.scales)))
            entries.append(try .init(name: prefix + ".g_idx", dtype: .i32, shape: [columns], data: int32Bytes(layer.groupIndex.map(UInt32.init))))
            quantized += 1
        }
        let quantization = JSONValue.object([
            ("bits", .integer(Int64(options.grid.bits))), ("group_size", .integer(Int64(options.grid.groupSize))),
            ("desc_act", .bool(options.solver.actOrder)), ("sym", .bool(options.grid.symmetric)),
            ("static_groups", .bool(options.grid.staticGroups)), ("true_sequential", .bool(false)),
            ("damp_percent", .number(options.solver.damp)), ("damp_auto_increment", .number(options.solver.dampIncrement)),
            ("lm_head", .bool(false)), ("mse", .number(options.grid.mse ? 2.4 : 0)),
            ("quant_method", .string("gptq")), ("checkpoint_format", .string("gptq")), ("pack_dtype", .string("int32")),
            ("meta", .object([("quantizer", .array([.string("quanta:\(StatisticsWriter.version)")])),
                              ("damp_used_max", .number(maxDamp)), ("statistics", .string(statistics.path))])),
        ])
        guard case var .object(members) = model.files.configJSON else { throw QuantaError.malformed(model.path, "config.json is not an object") }
        members.removeAll { $0.0 == "quantization_config" || $0.0 == "torch_dtype" || $0.0 == "dtype" }
        members.append(("torch_dtype", .string("float16")))
        members.append(("quantization_config", quantization))
        let copies = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"]
            .map { (from: FileSystem.join(model.path, $0), name: $0) }.filter { FileSystem.kind(of: $0.from) == .file }
        try FolderSink.write(to: folder, tensors: entries, metadata: ["format": "pt", "quantizer": "quanta"],
                             json: [("config.json", .object(members)), ("quantize_config.json", quantization)], copies: copies)
        return Summary(quantized: quantized, seconds: monotonicSeconds() - start, maxDamp: maxDamp)
    }

    /// One weight's GPTQ result in the grid's terms.
    struct Layer {
        var levels: [Int32]
        var scales: [Float]
        var zeros: [Float]
        var groupIndex: [Int32]
        var groups: Int
        var damp: Double
    }

    /// GPTQ on fixed slices of rows sharing one factorization, spread over the threads.
    static func solve(_ w: [Float], rows: Int, factorization: GPTQ.Factorization, options: Options, threads: Int) throws -> Layer {
        let columns = factorization.columns
        let slices = (rows + rowsPerSlice - 1) / rowsPerSlice
        var parts = [AffineQuantizer?](repeating: nil, count: slices)
        nonisolated(unsafe) var failure: Error?
        let lock = ErrorLock()
        try w.withUnsafeBufferPointer { wb in
            nonisolated(unsafe) let source = wb.baseAddress!
            try parts.withUnsafeMutableBufferPointer { out in
                nonisolated(unsafe) let results = out.baseAddress!
                let workers = max(1, min(threads, slices))
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    for s in stride(from: worker, to: slices, by: workers) {
                        let r0 = s * rowsPerSlice, r1 = min(rows, r0 + rowsPerSlice)
                        do {
                            let part = UnsafeBufferPointer(start: source + r0 * columns, count: (r1 - r0) * columns)
                            var grid = try AffineQuantizer(options: options.grid, rows: r1 - r0, columns: columns, original: part)
                            _ = try GPTQ.solve(weight: part, rows: r1 - r0, factorization: factorization, quantizer: &grid)
                            results[s] = grid
                        } catch {
                            lock.run { failure = failure ?? error }
                        }
                    }
                }
                if let failure { throw failure }
            }
        }
        let first = parts[0]!
        let groups = first.groups
        var layer = Layer(levels: [], scales: Array(repeating: 0, count: groups * rows), zeros: Array(repeating: 0, count: groups * rows),
                          groupIndex: first.groupIndex, groups: groups, damp: factorization.damp)
        layer.levels.reserveCapacity(rows * columns)
        for (s, part) in parts.enumerated() {
            let grid = part!, r0 = s * rowsPerSlice
            layer.levels += grid.levels
            for g in 0..<groups {
                for r in 0..<grid.rows {
                    layer.scales[g * rows + r0 + r] = grid.scales[g * grid.rows + r]
                    layer.zeros[g * rows + r0 + r] = grid.zeros[g * grid.rows + r]
                }
            }
        }
        return layer
    }

    static func int32Bytes(_ words: [UInt32]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: words.count * 4)
        for (i, w) in words.enumerated() { for b in 0..<4 { out[4 * i + b] = UInt8(truncatingIfNeeded: w >> (8 * b)) } }
        return out
    }

    static func f16Bytes(_ values: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * 2)
        for (i, v) in values.enumerated() {
            let h = HalfConversion.floatToF16(v)
            out[2 * i] = UInt8(truncatingIfNeeded: h)
            out[2 * i + 1] = UInt8(truncatingIfNeeded: h >> 8)
        }
        return out
    }
}
