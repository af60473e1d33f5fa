import QuantaCore
import QuantaIO

/// What a sensitivity measurement depends on; a cached table is reused only when all of it matches.
public struct SensitivityKey: Sendable, Equatable {
    /// sha256 of the model's weights (as the statistics file records it).
    public var modelSHA256: String
    /// sha256 of the slice's text file.
    public var dataSHA256: String
    /// sha256 of the importance values used for rounding ("" without).
    public var importanceSHA256: String
    public var context: Int
    public var chunks: Int
    public var addBOS: Bool

    public init(modelSHA256: String, dataSHA256: String, importanceSHA256: String, context: Int, chunks: Int, addBOS: Bool) {
        self.modelSHA256 = modelSHA256
        self.dataSHA256 = dataSHA256
        self.importanceSHA256 = importanceSHA256
        self.context = context
        self.chunks = chunks
        self.addBOS = addBOS
    }
}

/// Sensitivity per tensor and candidate: mean KLD when that tensor alone is quantized, and the
/// Hessian-weighted proxy. NaN where a candidate does not fit a tensor's rows.
public struct SensitivityTable: Sendable {
    public static let format = "quanta-sensitivity"
    public var key: SensitivityKey
    /// Tensor names in llama.cpp's order.
    public var tensors: [String]
    /// Candidate names in the order measured.
    public var candidates: [String] = []
    public var kld: [String: [Double]] = [:]
    public var proxy: [String: [Double]] = [:]

    public init(key: SensitivityKey, tensors: [String]) {
        self.key = key
        self.tensors = tensors
    }

    /// Spearman's rank correlation of proxy and measured KLD over the tensors where both are
    /// defined and the proxy comes from a Gram matrix (`weighted`); nil below three tensors.
    public func spearman(_ candidate: String, weighted: Set<String>) -> Double? {
        guard let k = kld[candidate], let p = proxy[candidate] else { return nil }
        let pairs = tensors.indices.filter { k[$0].isFinite && p[$0].isFinite && weighted.contains(tensors[$0]) }.map { (k[$0], p[$0]) }
        guard pairs.count >= 3 else { return nil }
        return SensitivityTable.pearson(SensitivityTable.ranks(pairs.map(\.0)), SensitivityTable.ranks(pairs.map(\.1)))
    }

    /// Ranks from 1, ties sharing their mean rank.
    static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
            for k in i...j { ranks[order[k]] = Double(i + j) / 2 + 1 }
            i = j + 1
        }
        return ranks
    }

    static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count), ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices {
            sab += (a[i] - ma) * (b[i] - mb)
            saa += (a[i] - ma) * (a[i] - ma)
            sbb += (b[i] - mb) * (b[i] - mb)
        }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }

    /// Writes the table atomically: root attributes hold the key and the tensor names; one group
    /// per candidate holds `kld` and `proxy` (float64, one value per tensor).
    public func write(_ path: String) throws {
        let store = try HDF5Store(path: path, mode: .create)
        try store.setRootAttributes([
            ("format", .string(SensitivityTable.format)), ("model_sha256", .string(key.modelSHA256)),
            ("data_sha256", .string(key.dataSHA256)), ("importance_sha256", .string(key.importanceSHA256)),
            ("context", .int64(Int64(key.context))), ("chunks", .int64(Int64(key.chunks))), ("add_bos", .int64(key.addBOS ? 1 : 0)),
            ("tensors", .string(tensors.joined(separator: "\n"))), ("candidates", .string(candidates.joined(separator: "\n"))),
        ])
        for (i, candidate) in candidates.enumerated() {
            let group = "c\(i)"
            try store.createGroup(group, attributes: [("candidate", .string(candidate))])
            try store.write("\(group)/kld", kld[candidate]!, shape: [tensors.count], compression: 0)
            try store.write("\(group)/proxy", proxy[candidate]!, shape: [tensors.count], compression: 0)
        }
        try store.close()
    }

    /// Reads a table written by `write`, checking its shape.
    public static func read(_ path: String) throws -> SensitivityTable {
        let store = try HDF5Store(path: path, mode: .read)
        defer { try? store.close() }
        let root = Dictionary(try store.rootAttributes(), uniquingKeysWith: { a, _ in a })
        func string(_ k: String) throws -> String {
            guard case let .string(v)? = root[k] else { throw QuantaError.malformed(path, "attribute '\(k)' is missing or not a string") }
            return v
        }
        func int(_ k: String) throws -> Int {
            guard case let .int64(v)? = root[k], v >= 0, v < Int64(Int32.max) else { throw QuantaError.malformed(path, "attribute '\(k)' is missing or out of range") }
            return Int(v)
        }
        guard try string("format") == format else { throw QuantaError.malformed(path, "not a Quanta sensitivity table") }
        let key = SensitivityKey(modelSHA256: try string("model_sha256"), dataSHA256: try string("data_sha256"),
                                 importanceSHA256: try string("importance_sha256"), context: try int("context"), chunks: try int("chunks"),
                                 addBOS: try int("add_bos") != 0)
        var table = SensitivityTable(key: key, tensors: try string("tensors").split(separator: "\n").map(String.init))
        let candidates = try string("candidates").split(separator: "\n").map(String.init)
        for (i, candidate) in candidates.enumerated() {
            let kld = try store.read("c\(i)/kld", as: Double.self), proxy = try store.read("c\(i)/proxy", as: Double.self)
            guard kld.shape == [table.tensors.count], proxy.shape == kld.shape else {
                throw QuantaError.malformed("\(path): candidate \(candidate)", "has \(kld.shape) values for \(table.tensors.count) tensors")
            }
            table.candidates.append(candidate)
            table.kld[candidate] = kld.storage
            table.proxy[candidate] = proxy.storage
        }
        return table
    }
}

extension ImportanceMatrix {
    /// sha256 over every entry's name, sums and counts (hex): identifies the values, not the file.
    public var fingerprint: String {
        var hasher = SHA256()
        for entry in entries {
            hasher.update(Array(entry.name.utf8) + [0])
            entry.sums.withUnsafeBytes { hasher.update($0) }
            entry.counts.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize().map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
