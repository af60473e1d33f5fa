import QuantaCore
import QuantaIO

/// The result of `quanta compare`: one row per scheme × calibration set × evaluation text ×
/// runtime, with what produced them. Stored as `report.json` (schema `quanta-report`, version 1;
/// see docs/REPORT.md).
public struct ComparisonReport: Sendable, Equatable {
    public static let schema = "quanta-report"
    public static let version = 1

    public struct Row: Sendable, Equatable {
        public var scheme: String
        /// rtn, gptq, awq, awq+gptq, mixed, recipe.
        public var method: String
        /// gguf or a checkpoint layout (gptq, mlx, ...).
        public var format: String
        /// Calibration set name ("" for calibration-free schemes).
        public var calibration: String
        public var evaluation: String
        /// fp32 or llamacpp.
        public var runtime: String
        /// File (or folder) bytes.
        public var bytes: Int
        /// Weight bytes × 8 / parameters.
        public var bitsPerWeight: Double
        public var perplexity: Double
        public var perplexityError: Double
        public var deltaPerplexity: Double
        public var meanKLD: Double
        public var meanKLDError: Double
        public var medianKLD: Double
        public var p99KLD: Double
        public var maxKLD: Double
        public var sameTopPercent: Double
        public var rmsDeltaPPercent: Double
        public var quantizeSeconds: Double
        /// Peak resident memory of the quantize process.
        public var peakMemoryBytes: Int
        /// Per-tensor types of mixed schemes (GGUF name -> type), for the bit map; empty otherwise.
        public var tensorTypes: [String: String] = [:]

        public init(scheme: String, method: String, format: String, calibration: String, evaluation: String, runtime: String) {
            self.scheme = scheme
            self.method = method
            self.format = format
            self.calibration = calibration
            self.evaluation = evaluation
            self.runtime = runtime
            (bytes, bitsPerWeight, perplexity, perplexityError, deltaPerplexity) = (0, 0, 0, 0, 0)
            (meanKLD, meanKLDError, medianKLD, p99KLD, maxKLD, sameTopPercent, rmsDeltaPPercent) = (0, 0, 0, 0, 0, 0, 0)
            (quantizeSeconds, peakMemoryBytes) = (0, 0)
        }

        /// The row as people read it: "scheme @ calibration, evaluation, runtime".
        public var label: String { "\(scheme)\(calibration.isEmpty ? "" : " @ " + calibration), \(evaluation), \(runtime)" }

        /// What identifies a row across reports.
        public var key: String { [scheme, calibration, evaluation, runtime].joined(separator: " | ") }
    }

    public struct Input: Sendable, Equatable {
        public var name: String
        public var path: String
        public var sha256: String
        /// Evaluation texts: the fp32 model's perplexity on it (0 for calibration sets).
        public var baselinePerplexity: Double = 0

        public init(name: String, path: String, sha256: String) {
            self.name = name
            self.path = path
            self.sha256 = sha256
        }
    }

    /// One scheme on one calibration set (its recipe depends on both for mixed schemes).
    public struct Scheme: Sendable, Equatable {
        public var name: String
        public var calibration: String
        public var method: String
        public var format: String
        /// The `quanta quantize` arguments after MODEL and OUTPUT (`{stats}` for the calibration set's statistics).
        public var arguments: [String]
        /// The recipe embedded in the output (GGUF), "" otherwise.
        public var recipe: String = ""

        public init(name: String, method: String, format: String, arguments: [String], calibration: String) {
            self.name = name
            self.calibration = calibration
            self.method = method
            self.format = format
            self.arguments = arguments
        }
    }

    public var quantaVersion = QuantaVersion.string
    public var environment: [(String, String)] = []
    public var modelPath = ""
    public var modelSHA256 = ""
    public var parameters = 0
    /// ctx, chunks, add_bos, samples, seq_len, seed.
    public var protocolSettings: [(String, Int)] = []
    public var calibrationSets: [Input] = []
    public var evaluationTexts: [Input] = []
    public var schemes: [Scheme] = []
    public var rows: [Row] = []
    /// Measured per-tensor sensitivity (mean KLD with one tensor quantized) per calibration set,
    /// when a mixed scheme measured it: tensors in order, and per candidate one value per tensor.
    public var sensitivity: [Sensitivity] = []

    public struct Sensitivity: Sendable, Equatable {
        public var calibration: String
        public var tensors: [String]
        public var candidates: [(name: String, kld: [Double])]

        public init(calibration: String, tensors: [String], candidates: [(name: String, kld: [Double])]) {
            self.calibration = calibration
            self.tensors = tensors
            self.candidates = candidates
        }

        public static func == (a: Sensitivity, b: Sensitivity) -> Bool {
            a.calibration == b.calibration && a.tensors == b.tensors && a.candidates.map(\.name) == b.candidates.map(\.name)
                && zip(a.candidates, b.candidates).allSatisfy { $0.kld.elementsEqual($1.kld) { $0 == $1 || ($0.isNaN && $1.isNaN) } }
        }
    }

    public init() {}

    public static func == (a: ComparisonReport, b: ComparisonReport) -> Bool { a.json == b.json }

    /// Rows in the report's order: evaluation, runtime, bytes, scheme, calibration.
    public mutating func sortRows() {
        rows.sort { ($0.evaluation, $0.runtime, $0.bytes, $0.scheme, $0.calibration) < ($1.evaluation, $1.runtime, $1.bytes, $1.scheme, $1.calibration) }
        schemes.sort { ($0.name, $0.calibration) < ($1.name, $1.calibration) }
        sensitivity.sort { $0.calibration < $1.calibration }
    }

    /// Keys of the rows on the Pareto front of (bytes, mean KLD) within their evaluation text and runtime.
    public var paretoKeys: Set<String> {
        var keys = Set<String>()
        let groups = Dictionary(grouping: rows) { "\($0.evaluation)|\($0.runtime)" }
        for (_, group) in groups {
            for row in group where !group.contains(where: { o in
                (o.bytes <= row.bytes && o.meanKLD < row.meanKLD) || (o.bytes < row.bytes && o.meanKLD <= row.meanKLD)
            }) { keys.insert(row.key) }
        }
        return keys
    }
}

extension ComparisonReport {
    public var json: JSONValue {
        func number(_ v: Double) -> JSONValue { v.isFinite ? .number(v) : .null }
        func input(_ i: Input) -> JSONValue {
            var m: [(String, JSONValue)] = [("name", .string(i.name)), ("path", .string(i.path)), ("sha256", .string(i.sha256))]
            if i.baselinePerplexity > 0 { m.append(("baseline_perplexity", number(i.baselinePerplexity))) }
            return .object(m)
        }
        let rows: [JSONValue] = self.rows.map { r in
            var m: [(String, JSONValue)] = [
                ("scheme", .string(r.scheme)), ("method", .string(r.method)), ("format", .string(r.format)),
                ("calibration", .string(r.calibration)), ("evaluation", .string(r.evaluation)), ("runtime", .string(r.runtime)),
                ("bytes", .integer(Int64(r.bytes))), ("bits_per_weight", number(r.bitsPerWeight)),
                ("perplexity", number(r.perplexity)), ("perplexity_error", number(r.perplexityError)), ("delta_perplexity", number(r.deltaPerplexity)),
                ("mean_kld", number(r.meanKLD)), ("mean_kld_error", number(r.meanKLDError)), ("median_kld", number(r.medianKLD)),
                ("p99_kld", number(r.p99KLD)), ("max_kld", number(r.maxKLD)), ("same_top_percent", number(r.sameTopPercent)),
                ("rms_delta_p_percent", number(r.rmsDeltaPPercent)), ("quantize_seconds", number(r.quantizeSeconds)),
                ("peak_memory_bytes", .integer(Int64(r.peakMemoryBytes))),
            ]
            if !r.tensorTypes.isEmpty {
                m.append(("tensor_types", .object(r.tensorTypes.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
            }
            return .object(m)
        }
        return .object([
            ("schema", .string(ComparisonReport.schema)), ("version", .integer(Int64(ComparisonReport.version))),
            ("quanta_version", .string(quantaVersion)),
            ("environment", .object(environment.map { ($0.0, .string($0.1)) })),
            ("model", .object([("path", .string(modelPath)), ("sha256", .string(modelSHA256)), ("parameters", .integer(Int64(parameters)))])),
            ("protocol", .object(protocolSettings.map { ($0.0, .integer(Int64($0.1))) })),
            ("calibration_sets", .array(calibrationSets.map(input))),
            ("evaluation_texts", .array(evaluationTexts.map(input))),
            ("schemes", .array(schemes.map { s in
                .object([("name", .string(s.name)), ("calibration", .string(s.calibration)), ("method", .string(s.method)), ("format", .string(s.format)),
                         ("arguments", .array(s.arguments.map { .string($0) })), ("recipe", .string(s.recipe))])
            })),
            ("rows", .array(rows)),
            ("sensitivity", .array(sensitivity.map { t in
                .object([("calibration", .string(t.calibration)), ("tensors", .array(t.tensors.map { .string($0) })),
                         ("candidates", .object(t.candidates.map { ($0.name, .array($0.kld.map(number))) }))])
            })),
        ])
    }

    /// Reads a report, naming the file and the field that is wrong.
    public static func read(_ path: String) throws -> ComparisonReport {
        let bytes = try FileSystem.read(path)
        let root: JSONValue
        do {
            root = try JSONParser.parse(bytes)
        } catch {
            throw QuantaError.malformed(path, "not valid JSON: \(error)")
        }
        return try parse(root, source: path)
    }

    public static func parse(_ root: JSONValue, source path: String) throws -> ComparisonReport {
        func fail(_ field: String, _ reason: String) -> QuantaError { QuantaError.malformed("\(path): \(field)", reason) }
        guard root["schema"]?.stringValue == schema else { throw fail("schema", "is not '\(schema)'") }
        guard let version = root["version"]?.intValue, version == ComparisonReport.version else {
            throw fail("version", "must be \(ComparisonReport.version)")
        }
        var report = ComparisonReport()
        report.quantaVersion = root["quanta_version"]?.stringValue ?? ""
        report.environment = (root["environment"]?.objectValue ?? []).map { ($0.0, $0.1.stringValue ?? "") }
        report.modelPath = root["model"]?["path"]?.stringValue ?? ""
        report.modelSHA256 = root["model"]?["sha256"]?.stringValue ?? ""
        report.parameters = root["model"]?["parameters"]?.intValue ?? 0
        report.protocolSettings = (root["protocol"]?.objectValue ?? []).map { ($0.0, $0.1.intValue ?? 0) }
        func inputs(_ key: String) throws -> [Input] {
            try (root[key]?.arrayValue ?? []).enumerated().map { i, v in
                guard let name = v["name"]?.stringValue, let p = v["path"]?.stringValue, let sha = v["sha256"]?.stringValue else {
                    throw fail("\(key)[\(i)]", "needs name, path and sha256 strings")
                }
                var input = Input(name: name, path: p, sha256: sha)
                input.baselinePerplexity = v["baseline_perplexity"]?.doubleValue ?? 0
                return input
            }
        }
        report.calibrationSets = try inputs("calibration_sets")
        report.evaluationTexts = try inputs("evaluation_texts")
        report.schemes = try (root["schemes"]?.arrayValue ?? []).enumerated().map { i, v in
            guard let name = v["name"]?.stringValue, let method = v["method"]?.stringValue, let format = v["format"]?.stringValue else {
                throw fail("schemes[\(i)]", "needs name, method and format strings")
            }
            var s = Scheme(name: name, method: method, format: format, arguments: (v["arguments"]?.arrayValue ?? []).compactMap(\.stringValue),
                           calibration: v["calibration"]?.stringValue ?? "")
            s.recipe = v["recipe"]?.stringValue ?? ""
            return s
        }
        report.sensitivity = try (root["sensitivity"]?.arrayValue ?? []).enumerated().map { i, v in
            guard let calibration = v["calibration"]?.stringValue, let tensors = v["tensors"]?.arrayValue?.compactMap(\.stringValue),
                  let candidates = v["candidates"]?.objectValue else { throw fail("sensitivity[\(i)]", "needs calibration, tensors and candidates") }
            return Sensitivity(calibration: calibration, tensors: tensors, candidates: try candidates.map { name, values in
                let kld = (values.arrayValue ?? []).map { $0.doubleValue ?? .nan }
                guard kld.count == tensors.count else { throw fail("sensitivity[\(i)].candidates.\(name)", "has \(kld.count) values for \(tensors.count) tensors") }
                return (name, kld)
            })
        }
        guard let rows = root["rows"]?.arrayValue else { throw fail("rows", "must be an array") }
        report.rows = try rows.enumerated().map { i, v in
            func string(_ k: String) throws -> String {
                guard let s = v[k]?.stringValue else { throw fail("rows[\(i)].\(k)", "must be a string") }
                return s
            }
            func double(_ k: String) throws -> Double {
                if v[k] == .null { return .nan }
                guard let d = v[k]?.doubleValue else { throw fail("rows[\(i)].\(k)", "must be a number") }
                return d
            }
            func int(_ k: String) throws -> Int {
                guard let n = v[k]?.intValue, n >= 0 else { throw fail("rows[\(i)].\(k)", "must be a non-negative integer") }
                return n
            }
            var r = Row(scheme: try string("scheme"), method: try string("method"), format: try string("format"),
                        calibration: try string("calibration"), evaluation: try string("evaluation"), runtime: try string("runtime"))
            r.bytes = try int("bytes")
            r.bitsPerWeight = try double("bits_per_weight")
            r.perplexity = try double("perplexity")
            r.perplexityError = try double("perplexity_error")
            r.deltaPerplexity = try double("delta_perplexity")
            r.meanKLD = try double("mean_kld")
            r.meanKLDError = try double("mean_kld_error")
            r.medianKLD = try double("median_kld")
            r.p99KLD = try double("p99_kld")
            r.maxKLD = try double("max_kld")
            r.sameTopPercent = try double("same_top_percent")
            r.rmsDeltaPPercent = try double("rms_delta_p_percent")
            r.quantizeSeconds = try double("quantize_seconds")
            r.peakMemoryBytes = try int("peak_memory_bytes")
            for (k, t) in v["tensor_types"]?.objectValue ?? [] { r.tensorTypes[k] = t.stringValue ?? "" }
            return r
        }
        return report
    }

    /// Merges partial reports (shards of one comparison): rows and inputs united, everything
    /// else from the first; refuses parts of a different model or protocol.
    public static func merge(_ parts: [(path: String, report: ComparisonReport)]) throws -> ComparisonReport {
        guard var merged = parts.first?.report else { throw QuantaError(.invalidArgument, "report merge", "no parts given") }
        for (path, part) in parts.dropFirst() {
            guard part.modelSHA256 == merged.modelSHA256 else {
                throw QuantaError(.invalidArgument, path, "is a report on model sha256 \(part.modelSHA256), not \(merged.modelSHA256)")
            }
            guard part.protocolSettings.map({ "\($0.0)=\($0.1)" }) == merged.protocolSettings.map({ "\($0.0)=\($0.1)" }) else {
                throw QuantaError(.invalidArgument, path, "was made with another protocol (ctx, chunks, samples...)")
            }
            for c in part.calibrationSets where !merged.calibrationSets.contains(where: { $0.name == c.name }) { merged.calibrationSets.append(c) }
            for e in part.evaluationTexts where !merged.evaluationTexts.contains(where: { $0.name == e.name }) { merged.evaluationTexts.append(e) }
            for s in part.schemes {
                if let k = merged.schemes.firstIndex(where: { $0.name == s.name && $0.calibration == s.calibration }) {
                    if merged.schemes[k].recipe.isEmpty { merged.schemes[k].recipe = s.recipe }
                } else {
                    merged.schemes.append(s)
                }
            }
            for t in part.sensitivity where !merged.sensitivity.contains(where: { $0.calibration == t.calibration }) { merged.sensitivity.append(t) }
            for r in part.rows {
                guard !merged.rows.contains(where: { $0.key == r.key }) else { throw QuantaError(.invalidArgument, path, "repeats row \(r.key)") }
                merged.rows.append(r)
            }
        }
        merged.sortRows()
        return merged
    }
}
