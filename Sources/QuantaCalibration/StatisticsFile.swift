import Dispatch
import QuantaCore
import QuantaIO
import QuantaModel

#if canImport(Glibc)
import Glibc
#endif

/// Where a statistics file came from: the attributes of its root group.
public struct CalibrationProvenance: Sendable, Equatable {
    public var modelPath: String
    public var modelType: String
    /// sha256 over the weight files in order (`weightsSHA256`).
    public var modelSHA256: String
    public var dataPath: String
    public var dataSHA256: String
    public var sampler: String
    public var seed: Int64
    public var samples: Int
    public var sequenceLength: Int
    public var addBOS: Bool
    public var hessian: String

    public init(modelPath: String, modelType: String, modelSHA256: String, dataPath: String, dataSHA256: String, sampler: String,
                seed: Int64, samples: Int, sequenceLength: Int, addBOS: Bool, hessian: String) {
        self.modelPath = modelPath
        self.modelType = modelType
        self.modelSHA256 = modelSHA256
        self.dataPath = dataPath
        self.dataSHA256 = dataSHA256
        self.sampler = sampler
        self.seed = seed
        self.samples = samples
        self.sequenceLength = sequenceLength
        self.addBOS = addBOS
        self.hessian = hessian
    }
}

/// sha256 over the bytes of `source`'s weight files in order, read through the map 16 MiB at a
/// time and released as it goes (lowercase hex).
public func weightsSHA256(_ source: ModelSource) throws -> String {
    var hasher = SHA256()
    for path in source.weightFiles {
        let file = try MappedFile(path: path)
        var offset = 0
        while offset < file.count {
            let end = min(file.count, offset + (1 << 24))
            hasher.update(UnsafeRawBufferPointer(rebasing: file.bytes[offset..<end]))
            file.release(offset..<end)
            offset = end
        }
    }
    return SHA256.hex(hasher.finalize())
}

/// Calibration statistics in HDF5: root attributes (`format`, provenance, `tokens`,
/// `quanta_version`, `created`), and one group per linear input named like the GGUF tensors it
/// feeds ("blk.3.attn_qkv", "blk.3.ffn_down", "output") with datasets `sum_squares` (float64
/// [columns]), `sum_abs` (float64), `max_abs` (float32) and, with the full Hessian, `gram`
/// (float64 [columns, columns]); group attributes `tokens`, `columns`, `layer` (-1 for the head),
/// `input`, `weights` (the GGUF tensors that multiply it, comma-separated).
public final class StatisticsWriter: @unchecked Sendable {
    public static let format = "quanta-calibration-statistics"
    public static let version = "0.1.0"
    /// Deflate level of the Gram matrices (shuffle + deflate). On SmolLM2 (30 layers, 805 MB of
    /// float64 Gram matrices) level 4 took 41-43 s for a 407 MB file, level 1 36 s for 415 MB,
    /// no compression 22 s for 1011 MB.
    public static let gramCompression = 1
    private let store: HDF5Store

    /// Starts the file (a temporary beside `path`, renamed by `finish`; removed if never finished).
    public init(path: String, provenance p: CalibrationProvenance, tokens: Int) throws {
        store = try HDF5Store(path: path, mode: .create)
        try store.setRootAttributes([
            ("format", .string(StatisticsWriter.format)),
            ("quanta_version", .string(StatisticsWriter.version)),
            ("created", .string(utcTimestamp())),
            ("model_path", .string(p.modelPath)), ("model_type", .string(p.modelType)), ("model_sha256", .string(p.modelSHA256)),
            ("data_path", .string(p.dataPath)), ("data_sha256", .string(p.dataSHA256)),
            ("sampler", .string(p.sampler)), ("seed", .int64(p.seed)), ("samples", .int64(Int64(p.samples))),
            ("sequence_length", .int64(Int64(p.sequenceLength))), ("add_bos", .int64(p.addBOS ? 1 : 0)),
            ("hessian", .string(p.hessian)), ("tokens", .int64(Int64(tokens))),
        ])
    }

    /// Writes one input's statistics as its group.
    public func write(_ s: InputStatistics, config: ModelConfig) throws {
        let specs = config.architecture.tensors(config)
        let weights = s.input.roles.compactMap { role in specs.first { $0.role == role && $0.layer == s.layer }?.ggufName }
        try store.createGroup(s.name, attributes: [
            ("tokens", .int64(Int64(s.tokens))), ("columns", .int64(Int64(s.columns))), ("layer", .int64(Int64(s.layer ?? -1))),
            ("input", .string(s.input.rawValue)), ("weights", .string(weights.joined(separator: ","))),
        ])
        try store.write("\(s.name)/sum_squares", s.sumSquares, shape: [s.columns])
        try store.write("\(s.name)/sum_abs", s.sumAbs, shape: [s.columns])
        try store.write("\(s.name)/max_abs", s.maxAbs, shape: [s.columns])
        if let gram = s.gram { try store.write("\(s.name)/gram", gram, shape: [s.columns, s.columns], compression: StatisticsWriter.gramCompression) }
    }

    private let queue = DispatchQueue(label: "quanta.statistics-writer")
    private var failure: Error?

    /// Writes `statistics` on the writer's own serial queue, so compressing a block's Gram
    /// matrices overlaps the next block's forward pass; `finish` waits and reports the
    /// first error. The statistics must not change afterwards.
    public func writeInBackground(_ statistics: [InputStatistics], config: ModelConfig) {
        queue.async {
            guard self.failure == nil else { return }
            do {
                for s in statistics { try self.write(s, config: config) }
            } catch {
                self.failure = error
            }
        }
    }

    /// Waits for the background writes, then closes the file and moves it into place (a file
    /// never finished is removed).
    public func finish() throws {
        try queue.sync {
            if let failure { throw failure }
            try store.close()
        }
    }
}

/// A statistics file read back: its provenance and, per input, the token count and sums.
public struct StatisticsFile {
    public struct Input {
        public let name: String
        public let layer: Int?
        public let input: LinearInput
        public let tokens: Int
        public let columns: Int
        public let sumSquares: [Double]
        /// GGUF names of the weights that multiply this input.
        public let weights: [String]

        public var sums: ImatrixExport.Sums { .init(layer: layer, input: input, tokens: tokens, sumSquares: sumSquares) }
    }

    public let path: String
    public let provenance: CalibrationProvenance
    public let inputs: [Input]

    public init(path: String) throws {
        self.path = path
        let store = try HDF5Store(path: path, mode: .read)
        defer { try? store.close() }
        let root = Dictionary(try store.rootAttributes(), uniquingKeysWith: { a, _ in a })
        func string(_ key: String) throws -> String {
            guard case let .string(v)? = root[key] else { throw QuantaError.malformed(path, "root attribute '\(key)' is missing or not a string") }
            return v
        }
        func int(_ key: String) throws -> Int64 {
            guard case let .int64(v)? = root[key] else { throw QuantaError.malformed(path, "root attribute '\(key)' is missing or not an integer") }
            return v
        }
        guard try string("format") == StatisticsWriter.format else {
            throw QuantaError.malformed(path, "not a Quanta statistics file (format is '\((try? string("format")) ?? "absent")')")
        }
        provenance = CalibrationProvenance(
            modelPath: try string("model_path"), modelType: try string("model_type"), modelSHA256: try string("model_sha256"),
            dataPath: try string("data_path"), dataSHA256: try string("data_sha256"), sampler: try string("sampler"), seed: try int("seed"),
            samples: Int(try int("samples")), sequenceLength: Int(try int("sequence_length")), addBOS: try int("add_bos") != 0,
            hessian: try string("hessian"))
        var inputs: [Input] = []
        for group in try store.groupNames() {
            let attributes = Dictionary(try store.attributes(ofGroup: group), uniquingKeysWith: { a, _ in a })
            guard case let .int64(tokens)? = attributes["tokens"], case let .int64(columns)? = attributes["columns"],
                  case let .int64(layer)? = attributes["layer"], case let .string(kind)? = attributes["input"],
                  let input = LinearInput(rawValue: kind), tokens >= 0, columns > 0, layer >= -1 else {
                throw QuantaError.malformed("\(path): group '\(group)'", "lacks valid tokens/columns/layer/input attributes")
            }
            let sums = try store.read("\(group)/sum_squares", as: Double.self)
            guard sums.shape == [Int(columns)] else {
                throw QuantaError.malformed("\(path): dataset '\(group)/sum_squares'", "has shape \(sums.shape), the group says \(columns) columns")
            }
            var weights: [String] = []
            if case let .string(names)? = attributes["weights"] { weights = names.split(separator: ",").map(String.init) }
            inputs.append(Input(name: group, layer: layer < 0 ? nil : Int(layer), input: input, tokens: Int(tokens), columns: Int(columns),
                                sumSquares: sums.storage, weights: weights))
        }
        self.inputs = inputs
    }

    /// The input that GGUF weight `name` multiplies, if recorded.
    public func input(feeding name: String) -> Input? { inputs.first { $0.weights.contains(name) } }

    /// The Gram matrix of input `input` (`columns x columns`, row-major), or nil when the file
    /// was written without full Hessians.
    public func gram(_ input: Input) throws -> [Double]? {
        guard try hasGram(input) else { return nil }
        let store = try HDF5Store(path: path, mode: .read)
        defer { try? store.close() }
        let gram = try store.read("\(input.name)/gram", as: Double.self)
        guard gram.shape == [input.columns, input.columns] else {
            throw QuantaError.malformed("\(path): dataset '\(input.name)/gram'", "has shape \(gram.shape), expected [\(input.columns), \(input.columns)]")
        }
        return gram.storage
    }

    /// Whether the file holds `input`'s Gram matrix (written with full Hessians), without reading it.
    public func hasGram(_ input: Input) throws -> Bool {
        let store = try HDF5Store(path: path, mode: .read)
        defer { try? store.close() }
        return try store.datasetNames(in: input.name).contains("gram")
    }

    /// Refuses statistics made from other weights than `source`'s, naming both checksums.
    public func check(against source: ModelSource) throws {
        let ours = try weightsSHA256(source)
        guard ours == provenance.modelSHA256 else {
            throw QuantaError(.invalidArgument, path, "statistics were computed on weights with sha256 \(provenance.modelSHA256), "
                              + "but \(source.path) has sha256 \(ours)")
        }
    }

    /// llama.cpp's importance matrix from the sums of squares.
    public func importanceMatrix(config: ModelConfig) -> ImportanceMatrix {
        ImatrixExport.matrix(inputs.map(\.sums), config: config, dataset: provenance.dataPath, chunks: provenance.samples, chunkSize: provenance.sequenceLength)
    }
}

/// The current UTC time as "YYYY-MM-DDTHH:MM:SSZ".
func utcTimestamp() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
}
