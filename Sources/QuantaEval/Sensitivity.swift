import CBLAS
import Dispatch
import QuantaAlgorithms
import QuantaCalibration
import QuantaCore
import QuantaFormats
import QuantaIO
import QuantaModel

#if canImport(Glibc)
import Glibc
#endif

/// One way to store a tensor that sensitivity analysis measures: a GGUF type, rounded as
/// llama-quantize does with the importance matrix (`Q4_K`), or solved by GPTQ through the
/// type's blocks with the statistics' Gram matrices (`Q4_K+gptq`); or an integer grid of the
/// checkpoint layouts (`w4g128`, `w3g64:asym`), rounded to nearest or solved by GPTQ
/// (`w4g128+gptq`), measured on the decoder's linears only (the layouts keep the rest in f16).
/// `TYPE+awq` is the type rounded in the model AWQ makes for it (`SequentialAWQ.transformed`).
public struct SensitivityCandidate: Sendable, Hashable, CustomStringConvertible {
    public enum Method: String, Sendable { case rtn, gptq, awq }
    public enum Storage: Sendable, Hashable {
        case gguf(GGMLType)
        case grid(GridScheme)
    }
    public let storage: Storage
    public let method: Method

    public init(type: GGMLType, method: Method = .rtn) {
        storage = .gguf(type)
        self.method = method
    }

    public init(grid: GridScheme, method: Method = .rtn) {
        storage = .grid(grid)
        self.method = method
    }

    /// Parses `TYPE`, `TYPE+gptq`, `TYPE+awq` (a ggml type Quanta writes), `wBgG[:asym]` or `wBgG[:asym]+gptq`; nil otherwise.
    public init?(name: String) {
        let parts = name.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let method: Method
        switch parts.count == 2 ? parts[1].lowercased() : "rtn" {
        case "rtn": method = .rtn
        case "gptq": method = .gptq
        case "awq": method = .awq
        default: return nil
        }
        if let grid = GridScheme(parts[0]) {
            guard method != .awq else { return nil }
            self.init(grid: grid, method: method)
            return
        }
        guard let type = GGMLType(name: parts[0]), BlockFormats.format(type)?.canQuantize == true || type == .f16 else { return nil }
        self.init(type: type, method: method)
    }

    /// The GGUF type (nil for a grid).
    public var type: GGMLType? { if case let .gguf(type) = storage { type } else { nil } }
    /// The integer grid (nil for a GGUF type).
    public var grid: GridScheme? { if case let .grid(grid) = storage { grid } else { nil } }

    public var description: String {
        let base = switch storage {
        case let .gguf(type): type.name
        case let .grid(grid): grid.description
        }
        return method == .rtn ? base : base + "+" + method.rawValue
    }

    /// The recipe scheme that writes this candidate (AWQ is the recipe's method, not a scheme's).
    public var scheme: RecipeScheme {
        switch storage {
        case let .gguf(type): .type(type, method: method == .awq ? nil : method.rawValue)
        case let .grid(grid): .grid(grid, method: method.rawValue)
        }
    }

    /// Storage bits per weight (a grid counts its f16 scale, and zero point when asymmetric, per group of 128 when per row).
    public var bitsPerWeight: Double {
        switch storage {
        case let .gguf(type): Double(type.byteCount(dimensions: [type.blockSize]) * 8) / Double(type.blockSize)
        case let .grid(grid): Double(grid.bits) + Double(16 + (grid.symmetric ? 0 : grid.bits)) / Double(grid.groupSize > 0 ? grid.groupSize : 4096)
        }
    }

    /// Whether `candidates` are all `TYPE+awq`; throws when they mix AWQ and other candidates
    /// (AWQ rescales whole blocks, so one allocation takes one or the other).
    public static func allAWQ(_ candidates: [SensitivityCandidate]) throws -> Bool {
        let awq = candidates.filter { $0.method == .awq }.count
        guard awq == 0 || awq == candidates.count else {
            throw QuantaError(.invalidArgument, "--candidates", "AWQ rescales whole blocks: give only TYPE+awq candidates, or none")
        }
        return awq > 0
    }

    /// The default set: the k-quants, IQ4_XS and Q8_0.
    public static let defaults: [SensitivityCandidate] = [.q2_K, .q3_K, .iq4_XS, .q4_K, .q5_K, .q6_K, .q8_0].map { SensitivityCandidate(type: $0) }
}

/// Per-tensor, per-candidate drift: the measured mean KLD of the model with that tensor alone
/// quantized, and the Hessian-weighted proxy trace(dW H dW^T) / tokens from the statistics.
public final class SensitivityAnalysis {
    public let source: ModelSource
    public let importance: ImportanceMatrix?
    public let statistics: StatisticsFile?
    public let threads: Int
    /// The quantizable tensors (llama-quantize's rules), in llama.cpp's order.
    public let tensors: [SourceTensor]
    /// Calibration windows and search settings for `TYPE+awq` candidates.
    public var awq: (sequences: [[Int32]], options: AWQOptions)?

    public init(source: ModelSource, importance: ImportanceMatrix?, statistics: StatisticsFile?, threads: Int) throws {
        try source.config.checkUnfused("the sensitivity analysis")
        self.source = source
        self.importance = importance
        self.statistics = statistics
        self.threads = max(1, threads)
        var options = QuantizationOptions()
        options.pure = true
        let c = source.config
        let plan = try QuantizationPlanner(preset: .q8_0, options: options, headCount: c.headCount, kvHeadCount: c.kvHeadCount,
                                           layerCount: c.layerCount).plan(source.tensors)
        let quantized = Set(plan.filter(\.quantized).map(\.name))
        tensors = source.tensors.filter { quantized.contains($0.name) && ($0.role == .embedding || $0.role == .output || $0.role?.linear != nil) }
            .sorted { QuantizationPlanner.llamaOrder($0.name, $1.name) }
    }

    /// Measures every (tensor, candidate) pair not already in `reuse` on `chunks` (equal-length
    /// token sequences; positions `firstScored..<length-1` scored, as llama-perplexity). A
    /// candidate whose blocks do not divide a tensor's rows gets NaN for that tensor.
    public func run(chunks: [[Int32]], firstScored: Int, candidates: [SensitivityCandidate], key: SensitivityKey,
                    reuse: SensitivityTable? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> SensitivityTable {
        var table = SensitivityTable(key: key, tensors: tensors.map(\.name))
        if let reuse, reuse.key == key, reuse.tensors == table.tensors { table = reuse }
        var missing = candidates.filter { table.kld[$0.description] == nil }
        guard !missing.isEmpty else { return table }
        // Each TYPE+awq candidate is TYPE measured on the model AWQ makes for TYPE.
        for candidate in missing where candidate.method == .awq {
            guard let awq, let type = candidate.type else {
                throw QuantaError(.invalidArgument, "candidate \(candidate)", "AWQ candidates need calibration windows (--stats)")
            }
            var options = awq.options
            options.grid = AWQOptions.grid(nearest: type.name)
            let (transformed, rescaled) = try SequentialAWQ.transformed(source: source, type: type, sequences: awq.sequences, awq: options, threads: threads)
            let plain = SensitivityCandidate(type: type)
            let measured = try SensitivityAnalysis(source: transformed, importance: rescaled, statistics: nil, threads: threads)
                .run(chunks: chunks, firstScored: firstScored, candidates: [plain], key: key, progress: progress)
            table.candidates.append(candidate.description)
            table.kld[candidate.description] = measured.kld[plain.description]
            table.proxy[candidate.description] = measured.proxy[plain.description]
        }
        missing.removeAll { $0.method == .awq }
        guard !missing.isEmpty else { return table }
        guard let T = chunks.first?.count, T > firstScored + 1, chunks.allSatisfy({ $0.count == T }) else {
            throw QuantaError(.invalidArgument, "sensitivity slice", "needs equal chunks longer than \(firstScored + 1) tokens")
        }
        let weights = try DecoderWeights.load(from: source) { _ in true }
        let model = DecoderModel(config: source.config, weights: weights, tokenizer: try source.tokenizer(), path: source.path)
        let d = source.config.hiddenSize, B = chunks.count, rows = B * T
        let scorer = DriftScorer(rows: (0..<B).flatMap { b in (firstScored..<(T - 1)).map { b * T + $0 } }, vocab: source.config.vocabSize,
                                 threads: threads)
        let current = UnsafeMutablePointer<Float>.allocate(capacity: rows * d), work = UnsafeMutablePointer<Float>.allocate(capacity: rows * d)
        defer { current.deallocate(); work.deallocate() }
        try model.embed(chunks, into: current)
        work.update(from: current, count: rows * d)
        try model.withLogits(residual: work, sequences: B, length: T, from: 0) { scorer.setBaseline($0) }

        var results = Dictionary(uniqueKeysWithValues: missing.map { ($0.description, [Double](repeating: .nan, count: tensors.count)) })
        var proxies = results
        let quantizers = try missing.map { try quantizer($0) }
        let factorizations = FactorizationCache()
        var done = 0
        let total = tensors.count * missing.count
        var layer = 0  // the block whose input `current` holds
        let L = source.config.layerCount
        func target(_ tensor: SourceTensor) -> Int { tensor.role == .embedding ? 0 : (tensor.layer ?? L) }
        // Front to back, so the kept residual stream only moves forward.
        for t in tensors.indices.sorted(by: { (target(tensors[$0]), $0) < (target(tensors[$1]), $1) }) {
            let tensor = tensors[t], target = target(tensor)
            while layer < target {  // advance the kept residual stream with fp32 weights
                model.block(model.weights.layers[layer], index: layer, current, sequences: B, length: T)
                layer += 1
            }
            // The fp32 values the model already holds (GGUF layout, as the quantizers take them).
            let values = switch tensor.role {
            case .embedding: model.weights.embedding
            case .output: model.weights.output ?? model.weights.embedding
            default: model.weights.layers[tensor.layer!][linear: tensor.role!.linear!]
            }
            let gram = try proxyGram(tensor)
            for (c, candidate) in missing.enumerated() {
                defer { done += 1; progress?(done, total) }
                guard let restored = try restore(tensor, values, candidate, quantizers[c], factorizations: factorizations) else { continue }
                proxies[candidate.description]![t] = proxy(values, restored, columns: tensor.dimensions[0], gram: gram)
                let kld: Double
                switch tensor.role {
                case .embedding:
                    let kept = model.weights.embedding
                    model.weights.embedding = restored
                    defer { model.weights.embedding = kept }
                    try model.embed(chunks, into: work)
                    kld = try model.withLogits(residual: work, sequences: B, length: T, from: 0) { scorer.meanKLD($0) }
                case .output:
                    let kept = model.weights.output
                    model.weights.output = restored
                    defer { model.weights.output = kept }
                    work.update(from: current, count: rows * d)
                    kld = try model.withLogits(residual: work, sequences: B, length: T, from: L) { scorer.meanKLD($0) }
                default:
                    let l = tensor.layer!, role = tensor.role!.linear!
                    let kept = model.weights.layers[l][linear: role]
                    model.weights.layers[l][linear: role] = restored
                    defer { model.weights.layers[l][linear: role] = kept }
                    work.update(from: current, count: rows * d)
                    kld = try model.withLogits(residual: work, sequences: B, length: T, from: l) { scorer.meanKLD($0) }
                }
                results[candidate.description]![t] = kld
            }
        }
        for candidate in missing {
            table.candidates.append(candidate.description)
            table.kld[candidate.description] = results[candidate.description]
            table.proxy[candidate.description] = proxies[candidate.description]
        }
        return table
    }

    /// The values `tensor` decodes to as `candidate`; nil when the candidate cannot store it
    /// (blocks or groups that do not divide its rows; a type ggml writes only with importance
    /// weights, on a tensor the importance matrix has no entry for; a grid on a tensor other than
    /// a decoder linear).
    func restore(_ tensor: SourceTensor, _ values: [Float], _ candidate: SensitivityCandidate, _ quantizer: TensorQuantizer?,
                 factorizations: FactorizationCache) throws -> [Float]? {
        switch candidate.storage {
        case let .gguf(type):
            guard tensor.dimensions[0] % type.blockSize == 0, let quantizer else { return nil }
            if Quantization.requiresImportance(type) && importance?.importance(for: tensor.name) == nil { return nil }
            let planned = PlannedTensor(name: tensor.name, dimensions: tensor.dimensions, sourceType: tensor.type, type: type)
            let bytes = try values.withUnsafeBufferPointer { try quantizer.quantize(planned, $0) }
            return try bytes.withUnsafeBytes { try Quantization.dequantize(type, $0, count: values.count) }
        case let .grid(grid):
            // GGUF layout rows (q/k permuted for RoPE) quantize as the folder's: rows are independent.
            let (columns, rows) = (tensor.dimensions[0], tensor.dimensions[1])
            guard tensor.role?.linear != nil, tensor.role != .output, tensor.layer != nil,
                  grid.groupSize == -1 || columns % grid.groupSize == 0 else { return nil }
            var factorization: GPTQ.Factorization?
            if candidate.method == .gptq {
                guard let statistics else {
                    throw QuantaError(.invalidArgument, "candidate \(candidate)", "GPTQ candidates need statistics with Gram matrices (--stats)")
                }
                factorization = try factorizations.requiredFactorization(feeding: tensor.name, columns: columns, statistics: statistics,
                                                                         options: GPTQOptions())
            }
            return try GPTQCheckpoint.decodedLinear(values, rows: rows, columns: columns, grid: grid.options, factorization: factorization,
                                                    threads: threads)
        }
    }

    func quantizer(_ candidate: SensitivityCandidate) throws -> TensorQuantizer? {
        guard candidate.type != nil else { return nil }
        switch candidate.method {
        case .rtn, .awq: return RoundToNearest(importance: importance, threads: threads)
        case .gptq:
            guard let statistics, let importance else {
                throw QuantaError(.invalidArgument, "candidate \(candidate)", "GPTQ candidates need statistics with Gram matrices (--stats)")
            }
            return GPTQRounding(statistics: statistics, importance: importance, options: GPTQOptions(), threads: threads)
        }
    }

    /// The tensors whose proxy is Hessian-weighted: their input has a Gram matrix in the statistics.
    public func gramWeighted() throws -> Set<String> {
        guard let statistics else { return [] }
        return Set(try tensors.filter { t in
            guard let input = statistics.input(feeding: t.name), input.columns == t.dimensions[0] else { return false }
            return try statistics.hasGram(input)
        }.map(\.name))
    }

    /// The Gram matrix of the input `tensor` multiplies, over tokens (nil: none recorded).
    func proxyGram(_ tensor: SourceTensor) throws -> [Double]? {
        guard let statistics, let input = statistics.input(feeding: tensor.name), input.columns == tensor.dimensions[0],
              input.tokens > 0, var gram = try statistics.gram(input) else { return nil }
        let scale = 1 / Double(input.tokens)
        for i in gram.indices { gram[i] *= scale }
        return gram
    }

    /// trace(dW H dW^T) with H the mean Gram matrix; without one, the mean squared error per row.
    func proxy(_ original: [Float], _ restored: [Float], columns: Int, gram: [Double]?) -> Double {
        let rows = original.count / columns
        var error = [Double](repeating: 0, count: original.count)
        for i in error.indices { error[i] = Double(restored[i]) - Double(original[i]) }
        guard let gram else { return error.reduce(0) { $0 + $1 * $1 } / Double(max(rows, 1)) }
        var product = [Double](repeating: 0, count: error.count)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns), Int32(columns), 1,
                    error, Int32(columns), gram, Int32(columns), 0, &product, Int32(columns))
        var sum = 0.0
        for i in error.indices { sum += error[i] * product[i] }
        return sum
    }
}

/// Mean KL(base || ours) over fixed logit rows, with the baseline kept as Float probabilities
/// and per-row Σ p·log p and Σ p: each comparison is one log-sum-exp and one dot product per row.
final class DriftScorer: @unchecked Sendable {
    let rows: [Int]
    let vocab: Int
    let threads: Int
    private var probabilities: [Float] = []
    private var entropyTerms: [Double] = []
    private var masses: [Double] = []

    init(rows: [Int], vocab: Int, threads: Int) {
        self.rows = rows
        self.vocab = vocab
        self.threads = threads
    }

    func setBaseline(_ logits: UnsafeBufferPointer<Float>) {
        probabilities = [Float](repeating: 0, count: rows.count * vocab)
        entropyTerms = [Double](repeating: 0, count: rows.count)
        masses = entropyTerms
        let v = vocab
        let logprobs = UnsafeMutablePointer<Double>.allocate(capacity: v)
        defer { logprobs.deallocate() }
        for (r, row) in rows.enumerated() {
            logSoftmax(logits.baseAddress! + row * v, v, into: logprobs)
            var e = 0.0, m = 0.0
            for j in 0..<v {
                let p = Float(exp(logprobs[j]))
                probabilities[r * v + j] = p
                e += Double(p) * logprobs[j]
                m += Double(p)
            }
            entropyTerms[r] = e
            masses[r] = m
        }
    }

    /// KL = Σ p·log p − Σ p·x + lse(x)·Σ p for each row's logits x, averaged over rows.
    func meanKLD(_ logits: UnsafeBufferPointer<Float>) -> Double {
        let workers = min(threads, rows.count)
        var sums = [Double](repeating: 0, count: workers)
        let v = vocab
        nonisolated(unsafe) let (x, p) = (logits.baseAddress!, probabilities)
        sums.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var total = 0.0
                p.withUnsafeBufferPointer { p in
                    for r in stride(from: w, to: rows.count, by: workers) {
                        let row = x + rows[r] * v, pr = p.baseAddress! + r * v
                        var m = -Float.infinity
                        for j in 0..<v { m = max(m, row[j]) }
                        var s = 0.0, dot = 0.0
                        for j in 0..<v {
                            s += exp(Double(row[j] - m))
                            dot += Double(pr[j]) * Double(row[j])
                        }
                        total += entropyTerms[r] - dot + (Double(m) + log(s)) * masses[r]
                    }
                }
                out[w] = total
            }
        }
        return sums.reduce(0, +) / Double(rows.count)
    }
}
