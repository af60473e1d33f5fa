import Dispatch
import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel

/// Integer-grid checkpoints (GPTQ or round-to-nearest) in a folder layout (`CheckpointLayout`:
/// GPTQModel's "gptq" v1, MLX's affine): the decoder's linear weights quantized, embeddings,
/// norms and the head in f16 as GPTQModel leaves them, the tokenizer files copied. Three ways
/// to get the weights: GPTQ on the stored Gram matrices of the fp32 model (`write` with
/// statistics), GPTQ true-sequentially on calibration text (`writeSequential`), or
/// round-to-nearest on the same grid (`write` without statistics).
public enum GPTQCheckpoint {
    public struct Options: Sendable {
        public var grid = AffineQuantizer.Options()
        public var solver = GPTQOptions()
        public var layout: CheckpointLayout = GPTQFolderLayout()
        /// Per decoder linear (by GGUF name) what a recipe gives it; a linear not named takes
        /// `grid` and the run's method.
        public var assigned: [String: Assignment] = [:]
        /// The recipe that reproduces the folder (YAML), written into its config.
        public var recipe: String?

        public init() {}

        /// The grid options of `spec`'s linear (nil: kept in f16) and whether GPTQ solves it
        /// (`calibrated`: the run has statistics or calibration text).
        func plan(_ spec: TensorSpec, calibrated: Bool) -> (grid: AffineQuantizer.Options, gptq: Bool)? {
            switch assigned[spec.ggufName] {
            case nil: return (grid, calibrated)
            case .keep?: return nil
            case let .grid(scheme, gptq)?:
                var options = scheme.options
                options.staticGroups = grid.staticGroups
                options.mse = grid.mse
                return (options, gptq && calibrated)
            }
        }

        /// Throws, naming the tensor, when the layout cannot store what the options give a linear.
        func check(_ specs: [TensorSpec]) throws {
            try layout.check(grid, actOrder: solver.actOrder)
            guard !assigned.isEmpty else { return }
            guard layout.mixesGrids else {
                throw QuantaError.unsupported("--format \(layout.name)", "its loaders take one grid for every linear; a recipe or target cannot mix grids in it")
            }
            var fusedGrid: [String: Assignment] = [:]
            for spec in specs where quantizes(spec) {
                let assignment = assigned[spec.ggufName]
                if case let .grid(scheme, _)? = assignment {
                    do {
                        try layout.check(scheme.options, actOrder: solver.actOrder)
                    } catch let error as QuantaError {
                        throw QuantaError.unsupported("tensor '\(spec.ggufName)'", "\(scheme): \(error.reason)")
                    }
                    guard spec.shape.count == 2, layout.byteCount(rows: spec.shape[0], columns: spec.shape[1], grid: scheme) != nil else {
                        throw QuantaError.unsupported("tensor '\(spec.ggufName)'", "\(spec.shape.map(String.init).joined(separator: " x ")) does not fit the \(layout.name) layout as \(scheme)")
                    }
                }
                if layout.fusesLinears, let set = FusedLinears.set(of: GPTQCheckpoint.prefix(spec)) {
                    let key = set.parent + "." + set.fused
                    let grid: Assignment = switch assignment ?? .grid(GridScheme(grid), gptq: false) {
                    case .keep: .keep
                    case let .grid(g, _): .grid(g, gptq: false)
                    }
                    if let other = fusedGrid[key], other != grid {
                        throw QuantaError.unsupported("tensor '\(spec.ggufName)'", "vLLM fuses \(set.members.joined(separator: ", ")) into \(set.fused); a \(layout.name) folder gives them one scheme")
                    }
                    fusedGrid[key] = grid
                }
            }
        }

        /// What config.json says per module: every decoder linear's grid (nil: kept in f16).
        func modules(_ specs: [TensorSpec]) -> [(prefix: String, grid: GridScheme?)] {
            guard !assigned.isEmpty else { return [] }
            return specs.filter(GPTQCheckpoint.quantizes).map { spec in
                (GPTQCheckpoint.prefix(spec), plan(spec, calibrated: false).map { GridScheme($0.grid) })
            }
        }
    }

    /// A recipe's choice for one linear.
    public enum Assignment: Sendable, Equatable {
        /// Stored unquantized (f16).
        case keep
        /// On this grid; solved by GPTQ when `gptq` and the run is calibrated, rounded otherwise.
        case grid(GridScheme, gptq: Bool)
    }

    public struct Summary: Sendable {
        public let quantized: Int
        public let seconds: Double
        /// Largest dampening a factorization needed (above the asked one when one failed).
        public let maxDamp: Double
        /// Stage timings of a true-sequential run (nil otherwise).
        public var run: SequentialGPTQ.Run?
    }

    /// Rows per independent GPTQ slice (a fixed size, so the bytes do not depend on the threads).
    static let rowsPerSlice = 64

    /// The weights this writer quantizes: decoder linears (not the head).
    public static func quantizes(_ spec: TensorSpec) -> Bool {
        guard let role = spec.role.linear else { return false }
        return role != .output && spec.layer != nil
    }

    /// GPTQ with the statistics' Gram matrices (the fp32 model's inputs, not sequential), or
    /// round-to-nearest on the grid when `statistics` is nil. Streams tensor by tensor.
    public static func write(model: ModelFolder, statistics: StatisticsFile?, options: Options, to folder: String, threads: Int,
                             progress: ((Int, Int, String) -> Void)? = nil) throws -> Summary {
        let start = monotonicSeconds()
        let config = model.config
        try config.checkUnfused("gptq")
        let specs = config.architecture.tensors(config)
        try options.check(specs)
        try FolderSink.checkFree(folder)
        var solved: [String: [SafetensorsWriter.Entry]] = [:]
        var maxDamp = statistics == nil ? 0 : options.solver.damp
        let cache = FactorizationCache()
        for (index, spec) in specs.enumerated() where quantizes(spec) && model.weights.contains(spec.hfName) {
            progress?(index + 1, specs.count, spec.hfName)
            guard let (grid, gptq) = options.plan(spec, calibrated: statistics != nil) else { continue }
            var tensorOptions = options
            tensorOptions.grid = grid
            let tensor = try model.weights.floatTensor(spec.hfName)
            defer { model.weights.release(spec.hfName) }
            let (rows, columns) = (tensor.shape[0], tensor.shape[1])
            let layer: SolvedLinear
            if gptq, let statistics {
                let factorization = try cache.requiredFactorization(feeding: spec.ggufName, columns: columns, statistics: statistics, options: options.solver)
                layer = try solve(tensor.storage, rows: rows, factorization: factorization, options: tensorOptions, threads: threads)
            } else {
                layer = try round(tensor.storage, rows: rows, columns: columns, options: tensorOptions)
            }
            maxDamp = max(maxDamp, layer.damp)
            solved[spec.hfName] = try options.layout.entries(prefix: prefix(spec), layer, bits: grid.bits)
        }
        let settings = CheckpointSettings(grid: options.grid, solver: options.solver, method: statistics == nil ? "rtn" : "gptq",
                                          trueSequential: false, maxDamp: maxDamp, calibration: statistics?.path,
                                          modules: options.modules(specs), recipe: options.recipe)
        try assemble(model: model, solved: solved, settings: settings, layout: options.layout, to: folder)
        return Summary(quantized: solved.count, seconds: monotonicSeconds() - start, maxDamp: maxDamp)
    }

    /// True-sequential GPTQ on `sequences` (see `SequentialGPTQ`): each weight solved on the
    /// inputs the already-quantized weights before it produce, as the stored layout decodes them.
    public static func writeSequential(source: HuggingFaceSource, sequences: [[Int32]], calibration: String, options: Options, to folder: String,
                                       threads: Int, progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let start = monotonicSeconds()
        try options.check(source.model.config.architecture.tensors(source.model.config))
        try FolderSink.checkFree(folder)
        var solved: [String: [SafetensorsWriter.Entry]] = [:]
        let run = try SequentialGPTQ.run(source: source, sequences: sequences, options: options.solver, threads: threads, head: false,
                                         solve: { spec, values, _, factorization in
            guard quantizes(spec), spec.shape.count == 2, let (grid, gptq) = options.plan(spec, calibrated: true) else { return nil }
            var tensorOptions = options
            tensorOptions.grid = grid
            let (rows, columns) = (spec.shape[0], spec.shape[1])
            // GPTQ's rows are independent: solve in the Hugging Face row order the folder stores.
            let heads = spec.ggufPermutationHeads
            let original = try heads.map { try RopeLayout.interleave(values, rows: rows, columns: columns, heads: $0, inverse: true) } ?? values
            let layer = gptq ? try solve(original, rows: rows, factorization: factorization, options: tensorOptions, threads: threads)
                : try round(original, rows: rows, columns: columns, options: tensorOptions)
            solved[spec.hfName] = try options.layout.entries(prefix: prefix(spec), layer, bits: grid.bits)
            let decoded = options.layout.decode(layer)
            return try heads.map { try RopeLayout.interleave(decoded, rows: rows, columns: columns, heads: $0) } ?? decoded
        }, progress: progress)
        let settings = CheckpointSettings(grid: options.grid, solver: options.solver, method: "gptq", trueSequential: true,
                                          maxDamp: run.maxDamp, calibration: calibration,
                                          modules: options.modules(source.model.config.architecture.tensors(source.model.config)), recipe: options.recipe)
        try assemble(model: source.model, solved: solved, settings: settings, layout: options.layout, to: folder)
        return Summary(quantized: solved.count, seconds: monotonicSeconds() - start, maxDamp: run.maxDamp, run: run)
    }

    /// The metadata of the folder's model.safetensors.
    public static let safetensorsMetadata = ["format": "pt", "quantizer": "quanta"]

    /// The module path of a linear (its Hugging Face name without `.weight`).
    public static func prefix(_ spec: TensorSpec) -> String { String(spec.hfName.dropLast(".weight".count)) }

    /// Writes the folder: the solved linears' entries, every other tensor in f16 (streamed from
    /// the model), config.json with the layout's members, the layout's files, the tokenizer.
    /// `replaced` gives new values of unquantized tensors (AWQ's folded norms).
    static func assemble(model: ModelFolder, solved: [String: [SafetensorsWriter.Entry]], replaced: [String: [Float]] = [:],
                         settings: CheckpointSettings, layout: CheckpointLayout, to folder: String) throws {
        let config = model.config
        var entries: [SafetensorsWriter.Entry] = []
        for spec in config.architecture.tensors(config) where model.weights.contains(spec.hfName) {
            if let stored = solved[spec.hfName] {
                entries += stored
                continue
            }
            let info = try model.weights.info(spec.hfName)
            if let values = replaced[spec.hfName] {
                entries.append(try .f16(spec.hfName, shape: info.shape, values))
                continue
            }
            entries.append(try .init(name: spec.hfName, dtype: .f16, shape: info.shape) { writer in
                try writer.write(CheckpointBytes.f16(try model.weights.floatTensor(spec.hfName).storage))
                model.weights.release(spec.hfName)
            })
        }
        let (members, files) = layout.configuration(settings)
        guard case var .object(configMembers) = model.files.configJSON else { throw QuantaError.malformed(model.path, "config.json is not an object") }
        let replaced = Set(members.map(\.0) + ["torch_dtype", "dtype"])
        configMembers.removeAll { replaced.contains($0.0) }
        configMembers.append(("torch_dtype", .string("float16")))
        configMembers += members
        let copies = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"]
            .map { (from: FileSystem.join(model.path, $0), name: $0) }.filter { FileSystem.kind(of: $0.from) == .file }
        try FolderSink.write(to: folder, tensors: entries, metadata: safetensorsMetadata,
                             json: [("config.json", .object(configMembers))] + files, copies: copies)
    }

    /// What a GPTQ-layout folder decodes `w` (`[rows, columns]`) to on `grid`: GPTQ with
    /// `factorization`, round-to-nearest without one.
    public static func decodedLinear(_ w: [Float], rows: Int, columns: Int, grid: AffineQuantizer.Options, factorization: GPTQ.Factorization?,
                                     threads: Int) throws -> [Float] {
        var options = Options()
        options.grid = grid
        let layer = try factorization.map { try solve(w, rows: rows, factorization: $0, options: options, threads: threads) }
            ?? solvedLinear(w, rows: rows, columns: columns, grid: grid)
        return options.layout.decode(layer)
    }

    /// Round-to-nearest of `w` (`[rows, columns]`) on `grid`, before a layout packs it.
    public static func solvedLinear(_ w: [Float], rows: Int, columns: Int, grid: AffineQuantizer.Options) throws -> SolvedLinear {
        var options = Options()
        options.grid = grid
        return try round(w, rows: rows, columns: columns, options: options)
    }

    /// Round-to-nearest on the grid: every group fitted from the original weights, no feedback.
    static func round(_ w: [Float], rows: Int, columns: Int, options: Options) throws -> SolvedLinear {
        var grid = try AffineQuantizer(options: options.grid, rows: rows, columns: columns)
        var W = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { W[c * rows + r] = w[r * columns + c] } }
        var q = [Float](repeating: 0, count: rows)
        W.withUnsafeBufferPointer { wb in
            let base = wb.baseAddress!
            grid.begin(order: Array(0..<columns))
            for c in 0..<columns {
                grid.prepare(column: c) { base + $0 * rows }
                grid.quantize(column: c, base + c * rows, into: &q)
            }
        }
        return SolvedLinear(rows: rows, columns: columns, levels: grid.levels, scales: grid.scales, zeros: grid.zeros,
                            groupIndex: grid.groupIndex, groups: grid.groups, damp: 0)
    }

    /// GPTQ on fixed slices of rows sharing one factorization, spread over the threads.
    static func solve(_ w: [Float], rows: Int, factorization: GPTQ.Factorization, options: Options, threads: Int) throws -> SolvedLinear {
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
        var layer = SolvedLinear(rows: rows, columns: columns, levels: [], scales: Array(repeating: 0, count: groups * rows),
                                 zeros: Array(repeating: 0, count: groups * rows), groupIndex: first.groupIndex, groups: groups,
                                 damp: factorization.damp)
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
}
