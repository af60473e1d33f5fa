import QuantaCore

/// llama.cpp importance matrices: per weight tensor, the sum over calibration tokens of each
/// input column's squared activation (`in_sum2`, `columns x experts` values) and the number of
/// tokens seen (`counts`, one per expert). Reads and writes the GGUF-based format current
/// llama-imatrix writes and the legacy `.dat` format.
public struct ImportanceMatrix: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// The weight tensor's GGUF name ("blk.0.attn_q.weight").
        public let name: String
        /// Input columns (the weight's row length).
        public let columns: Int
        /// `columns * counts.count` sums of squared activations, expert-major.
        public let sums: [Float]
        /// Tokens seen, one per expert (one for dense tensors).
        public let counts: [Float]

        public init(name: String, columns: Int, sums: [Float], counts: [Float]) {
            self.name = name
            self.columns = columns
            self.sums = sums
            self.counts = counts
        }

        /// Mean squared activation per column (per expert), as llama-quantize computes it:
        /// sum / count, or 1 where a slice saw no tokens.
        public var importance: [Float] {
            var out = [Float](repeating: 1, count: sums.count)
            for (e, count) in counts.enumerated() where count > 0 {
                for i in 0..<columns { out[e * columns + i] = sums[e * columns + i] / count }
            }
            return out
        }
    }

    public var entries: [Entry]
    /// Calibration files the statistics came from.
    public var datasets: [String]
    public var chunkCount: Int
    public var chunkSize: Int

    public init(entries: [Entry], datasets: [String], chunkCount: Int, chunkSize: Int) {
        self.entries = entries
        self.datasets = datasets
        self.chunkCount = chunkCount
        self.chunkSize = chunkSize
    }

    /// The per-column importance of tensor `name`, or nil when the matrix has no entry for it.
    public func importance(for name: String) -> [Float]? {
        entries.first { $0.name == name }?.importance
    }

    /// Reads either format, recognised by content (GGUF magic or the legacy layout).
    public static func read(_ path: String) throws -> ImportanceMatrix {
        let file = try MappedFile(path: path)
        if file.count >= 4, file.bytes.loadUnaligned(as: UInt32.self) == GGUFFile.magic {
            return try readGGUF(GGUFFile(file: file))
        }
        return try readLegacy(file)
    }

    static func readGGUF(_ file: GGUFFile) throws -> ImportanceMatrix {
        guard file["general.type"]?.stringValue == "imatrix" else {
            throw QuantaError.malformed(file.path, "not an imatrix GGUF (general.type is \(file["general.type"]?.summary() ?? "absent"))")
        }
        var entries: [Entry] = []
        for info in file.tensors where info.name.hasSuffix(".in_sum2") {
            let name = String(info.name.dropLast(".in_sum2".count))
            guard let countsInfo = file.tensor(name + ".counts") else {
                throw QuantaError.malformed("\(file.path): tensor '\(info.name)'", "has no matching '\(name).counts'")
            }
            guard info.type == .f32, countsInfo.type == .f32, info.dimensions.count <= 2, !info.dimensions.contains(0),
                  countsInfo.elementCount == (info.dimensions.count == 2 ? info.dimensions[1] : 1) else {
                throw QuantaError.malformed("\(file.path): tensor '\(info.name)'", "in_sum2/counts must be F32 [columns, experts] and [experts]")
            }
            entries.append(Entry(name: name, columns: info.dimensions[0], sums: floats(file.rawBytes(info)),
                                 counts: floats(file.rawBytes(countsInfo))))
        }
        func count(_ key: String) throws -> Int {
            guard let value = file[key] else { return 0 }
            guard let n = value.intValue, n >= 0, n <= Int(UInt32.max) else {
                throw QuantaError.malformed("\(file.path): \(key)", "must be an integer in 0...\(UInt32.max), got \(value.summary())")
            }
            return n
        }
        return ImportanceMatrix(entries: entries,
                                datasets: file["imatrix.datasets"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                chunkCount: try count("imatrix.chunk_count"), chunkSize: try count("imatrix.chunk_size"))
    }

    static func floats(_ raw: UnsafeRawBufferPointer) -> [Float] {
        (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
    }

    /// Legacy layout: i32 entry count; per entry i32 name length, name, i32 ncall, i32 nval,
    /// nval f32 (mean squared activation times ncall); then optionally i32 last chunk,
    /// i32 length and the dataset name.
    static func readLegacy(_ file: MappedFile) throws -> ImportanceMatrix {
        var reader = ByteReader(file.bytes, path: file.path)
        let count = try reader.integer(Int32.self, "entry count")
        guard count >= 0, Int(count) <= reader.remaining / 12 else {
            throw QuantaError.malformed(file.path, "entry count \(count) does not fit the file (not an imatrix .dat?)")
        }
        var entries: [Entry] = []
        var seen = Set<String>()
        var lastCall = 0
        for i in 0..<Int(count) {
            let length = try reader.integer(Int32.self, "name length of entry \(i)")
            guard length > 0, Int(length) <= reader.remaining else {
                throw QuantaError.malformed(file.path, "entry \(i) has a name length of \(length)")
            }
            guard let name = decodeUTF8(try reader.slice(Int(length), "name of entry \(i)")) else {
                throw QuantaError.malformed(file.path, "entry \(i) has a name that is not UTF-8")
            }
            guard seen.insert(name).inserted else {
                throw QuantaError.malformed(file.path, "entry '\(name)' appears twice")
            }
            let ncall = try reader.integer(Int32.self, "ncall of '\(name)'")
            let nval = try reader.integer(Int32.self, "value count of '\(name)'")
            guard nval > 0, Int(nval) <= reader.remaining / 4 else {
                throw QuantaError.malformed(file.path, "'\(name)' claims \(nval) values")
            }
            let values = floats(try reader.slice(4 * Int(nval), "values of '\(name)'"))
            // Stored as mean * ncall; as sums over ncall "tokens" they give the same mean.
            let calls = Float(max(ncall, 0))
            entries.append(Entry(name: name, columns: Int(nval), sums: values, counts: [calls]))
            lastCall = max(lastCall, Int(ncall))
        }
        var datasets: [String] = []
        if reader.remaining > 0 {
            lastCall = Int(try reader.integer(Int32.self, "last chunk"))
            guard lastCall >= 0 else { throw QuantaError.malformed(file.path, "last chunk \(lastCall) is negative") }
            let length = try reader.integer(Int32.self, "dataset name length")
            guard length >= 0, Int(length) <= reader.remaining, let name = decodeUTF8(try reader.slice(Int(length), "dataset name")) else {
                throw QuantaError.malformed(file.path, "bad dataset name at the end of the file")
            }
            datasets = [name]
        }
        return ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: lastCall, chunkSize: 0)
    }

    /// Writes the GGUF-based format (as llama-imatrix does: general.type, imatrix.datasets,
    /// imatrix.chunk_count, imatrix.chunk_size; per entry `.in_sum2` then `.counts`).
    public func writeGGUF(to path: String) throws {
        var tensors: [GGUFWriter.TensorEntry] = []
        for entry in entries {
            let experts = entry.counts.count
            tensors.append(.init(name: entry.name + ".in_sum2", dimensions: experts > 1 ? [entry.columns, experts] : [entry.columns],
                                 type: .f32, bytes: float32Bytes(entry.sums)))
            tensors.append(.init(name: entry.name + ".counts", dimensions: [experts], type: .f32, bytes: float32Bytes(entry.counts)))
        }
        try GGUFWriter.write(to: path, metadata: [
            ("general.type", .string("imatrix")),
            ("imatrix.datasets", .array(.string, datasets.map { .string($0) })),
            ("imatrix.chunk_count", .uint32(UInt32(clamping: chunkCount))),
            ("imatrix.chunk_size", .uint32(UInt32(clamping: chunkSize))),
        ], tensors: tensors)
    }

    /// Writes the legacy `.dat` format; values are the mean times `chunkCount` (llama-imatrix's ncall).
    public func writeLegacy(to path: String) throws {
        func int32(_ value: Int, _ what: String) throws -> Int32 {
            guard let v = Int32(exactly: value) else { throw QuantaError(.invalidArgument, path, "\(what) \(value) does not fit the legacy format's 32 bits") }
            return v
        }
        var out = ByteWriter()
        out.integer(try int32(entries.count, "entry count"))
        for entry in entries {
            out.integer(try int32(entry.name.utf8.count, "name length"))
            out.raw(entry.name.utf8)
            out.integer(try int32(chunkCount, "chunk count"))
            out.integer(try int32(entry.columns, "column count of '\(entry.name)'"))
            let mean = entry.importance
            for i in 0..<entry.columns { out.float(mean[i] * Float(chunkCount)) }
        }
        out.integer(try int32(chunkCount, "chunk count"))
        let dataset = datasets.first ?? ""
        out.integer(try int32(dataset.utf8.count, "dataset name length"))
        out.raw(dataset.utf8)
        let writer = try AtomicFileWriter(path: path)
        try writer.write(out.bytes)
        try writer.commit()
    }
}
