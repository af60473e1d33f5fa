import QuantaCore

/// The tensors of one checkpoint, in a single `.safetensors` file or sharded through
/// `model.safetensors.index.json`. Tensor names are unique across shards.
public final class SafetensorsCollection: @unchecked Sendable {
    public let shards: [SafetensorsFile]
    /// Every tensor with the shard that holds it, in shard then file order.
    public let tensors: [(info: SafetensorsTensorInfo, shard: Int)]
    private let index: [String: Int]

    /// A single file.
    public convenience init(file path: String) throws {
        try self.init(shards: [SafetensorsFile(path: path)])
    }

    /// Opens the shards named by an index file (`{"metadata": ..., "weight_map": {tensor: file}}`),
    /// checking that every listed tensor is in its shard and every shard tensor is listed.
    public convenience init(index indexPath: String) throws {
        let json: JSONValue
        do {
            json = try JSONParser.parse(FileSystem.read(indexPath))
        } catch let failure as JSONParser.Failure {
            throw QuantaError.malformed(indexPath, "not valid JSON: \(failure)")
        }
        guard let weightMap = json["weight_map"]?.objectValue else {
            throw QuantaError.malformed(indexPath, "missing object 'weight_map'")
        }
        let folder = indexPath.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        var shardNames: [String] = []
        var expected: [String: String] = [:]
        for (tensor, value) in weightMap {
            guard let shard = value.stringValue else {
                throw QuantaError.malformed(indexPath, "weight_map entry '\(tensor)' is not a file name")
            }
            guard !shard.contains("/") else {
                throw QuantaError.malformed(indexPath, "weight_map entry '\(tensor)' points outside the folder: '\(shard)'")
            }
            if !shardNames.contains(shard) { shardNames.append(shard) }
            expected[tensor] = shard
        }
        let shards = try shardNames.map { try SafetensorsFile(path: FileSystem.join(folder.isEmpty ? "." : folder, $0)) }
        for (shardName, shard) in zip(shardNames, shards) {
            for info in shard.tensors where expected[info.name] != shardName {
                throw QuantaError.malformed(indexPath, "tensor '\(info.name)' in \(shardName) is "
                    + (expected[info.name].map { "listed under \($0)" } ?? "not listed in weight_map"))
            }
        }
        for (tensor, shardName) in expected {
            let shard = shards[shardNames.firstIndex(of: shardName)!]
            guard shard.contains(tensor) else {
                throw QuantaError.malformed(indexPath, "tensor '\(tensor)' is listed under \(shardName) but that shard does not hold it")
            }
        }
        try self.init(shards: shards)
    }

    public init(shards: [SafetensorsFile]) throws {
        self.shards = shards
        var tensors: [(info: SafetensorsTensorInfo, shard: Int)] = []
        var index: [String: Int] = [:]
        for (s, shard) in shards.enumerated() {
            for info in shard.tensors {
                guard index[info.name] == nil else {
                    throw QuantaError.malformed(shard.path, "tensor '\(info.name)' also appears in \(shards[tensors[index[info.name]!].shard].path)")
                }
                index[info.name] = tensors.count
                tensors.append((info, s))
            }
        }
        self.tensors = tensors
        self.index = index
    }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    private func shard(of name: String) throws -> SafetensorsFile {
        guard let i = index[name] else {
            throw QuantaError(.invalidArgument, "tensor '\(name)'", "no such tensor in \(shards.map(\.path).joined(separator: ", "))")
        }
        return shards[tensors[i].shard]
    }

    public func info(_ name: String) throws -> SafetensorsTensorInfo { try shard(of: name).info(name) }
    public func release(_ name: String) { (try? shard(of: name))?.release(name) }
    public func floatTensor(_ name: String) throws -> Tensor<Float> { try shard(of: name).floatTensor(name) }
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer { try shard(of: name).rawBytes(name) }
    public func integerTensor<T: FixedWidthInteger & Sendable>(_ name: String, as type: T.Type = T.self) throws -> Tensor<T> {
        try shard(of: name).integerTensor(name, as: type)
    }
}
