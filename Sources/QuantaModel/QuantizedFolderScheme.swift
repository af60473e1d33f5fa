import QuantaCore
import QuantaFormats
import QuantaIO

/// How a Hugging Face folder's linears are quantized, from its config.json: GPTQ v1
/// (`quantization_config.quant_method` "gptq", with GPTQModel's per-module `dynamic`), AutoAWQ
/// GEMM ("awq"), MLX affine (`quantization` with `bits` and `group_size`, and per-module entries)
/// or compressed-tensors pack-quantized (one or more config groups). nil for an unquantized folder.
public struct QuantizedFolderScheme: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case gptq(bits: Int)
        case mlx(bits: Int, groupSize: Int)
        case awq(groupSize: Int)
        /// compressed-tensors pack-quantized; `groupSize` nil for the channel strategy.
        case compressedTensors(bits: Int, groupSize: Int?)
    }

    /// How a per-module entry names its modules.
    enum Match: Sendable, Equatable {
        /// The module path itself.
        case exact(String)
        /// A regex matched from the start of the path (Python's `re.match`: GPTQModel's
        /// `dynamic` keys, compressed-tensors' `re:` targets).
        case prefix(String)
        /// Every module (compressed-tensors' `Linear` target).
        case all

        func matches(_ path: String) -> Bool {
            switch self {
            case let .exact(name): name == path
            case let .prefix(pattern): (try? Regex(pattern)).map { (try? $0.prefixMatch(in: path)) != nil } ?? false
            case .all: true
            }
        }
    }

    /// The kind of the modules no entry names.
    public let kind: Kind
    /// A per-module entry: the modules it names and their kind (nil: stored unquantized).
    struct Override: Sendable, Equatable {
        let match: Match
        let kind: Kind?

        init(_ match: Match, _ kind: Kind?) {
            self.match = match
            self.kind = kind
        }
    }

    /// Per-module kinds, the first match winning.
    let overrides: [Override]

    public init?(_ model: ModelFolder) throws {
        let json = model.files.configJSON
        let file = "\(model.path)/config.json"
        if let mlx = json["quantization"] {
            func kind(_ entry: JSONValue, _ what: String) throws -> Kind {
                guard let bits = entry["bits"]?.intValue, let group = entry["group_size"]?.intValue,
                      MLXLayout.supportedBits.contains(bits), group > 0, group <= 1 << 20 else {
                    throw QuantaError.unsupported(file, "\(what) \(entry.serialized()) is not an MLX affine layout Quanta reads")
                }
                if let mode = entry["mode"]?.stringValue, mode != "affine" {
                    throw QuantaError.unsupported(file, "MLX quantization mode '\(mode)' is not read (affine is)")
                }
                return .mlx(bits: bits, groupSize: group)
            }
            let base = try kind(mlx, "quantization")
            var overrides: [Override] = []
            for (name, entry) in mlx.objectValue ?? [] {
                switch entry {
                case .object: overrides.append(Override(.exact(name), try kind(entry, "quantization.\(name)")))
                case .bool(false): overrides.append(Override(.exact(name), nil))
                default: continue
                }
            }
            self.init(kind: base, overrides: overrides)
        } else if let ct = json["quantization_config"], ct["quant_method"]?.stringValue == "compressed-tensors" {
            let groups = ct["config_groups"]?.objectValue ?? []
            guard ct["format"]?.stringValue == "pack-quantized", !groups.isEmpty, groups.count <= 4096 else {
                throw QuantaError.unsupported(file, "quantization_config \(ct.serialized()) is not a pack-quantized int scheme Quanta reads (groups of 4 or 8 bits, group or channel)")
            }
            var overrides: [Override] = []
            for name in ct["ignore"]?.arrayValue ?? [] {
                guard let name = name.stringValue else { continue }
                overrides.append(Override(name.hasPrefix("re:") ? .prefix(String(name.dropFirst(3))) : .exact(name), nil))
            }
            for (groupName, group) in groups {
                guard let weights = group["weights"], let bits = weights["num_bits"]?.intValue, CompressedTensorsLayout.supportedBits.contains(bits),
                      weights["type"]?.stringValue ?? "int" == "int", let strategy = weights["strategy"]?.stringValue, ["group", "channel"].contains(strategy),
                      let targets = group["targets"]?.arrayValue, !targets.isEmpty else {
                    throw QuantaError.unsupported(file, "config group \(groupName) \(group.serialized()) is not a pack-quantized int scheme Quanta reads (4 or 8 bits, group or channel, targets)")
                }
                let size = strategy == "group" ? weights["group_size"]?.intValue : nil
                if strategy == "group" && !(1...(1 << 20)).contains(size ?? 0) {
                    throw QuantaError.malformed(file, "config group \(groupName): group strategy without a positive group_size")
                }
                for target in targets {
                    guard let target = target.stringValue else { throw QuantaError.malformed(file, "config group \(groupName): targets must be strings") }
                    let match: Match = target == "Linear" ? .all : target.hasPrefix("re:") ? .prefix(String(target.dropFirst(3))) : .exact(target)
                    overrides.append(Override(match, .compressedTensors(bits: bits, groupSize: size)))
                }
            }
            // Names and regexes before the class-name target, as vLLM matches them.
            let named = overrides.filter { $0.match != .all }, classWide = overrides.filter { $0.match == .all }
            self.init(kind: classWide.first?.kind ?? named.first { $0.kind != nil }?.kind ?? .compressedTensors(bits: 4, groupSize: nil), overrides: named)
        } else if let awq = json["quantization_config"], awq["quant_method"]?.stringValue == "awq" {
            guard awq["bits"]?.intValue == AWQLayout.bits, let group = awq["group_size"]?.intValue, group > 0, group <= 1 << 20,
                  (awq["version"]?.stringValue ?? "gemm").lowercased() == "gemm" else {
                throw QuantaError.unsupported(file, "quantization_config \(awq.serialized()) is not an AWQ GEMM layout Quanta reads (4 bits, groups)")
            }
            self.init(kind: .awq(groupSize: group), overrides: [])
        } else if let gptq = json["quantization_config"], let method = gptq["quant_method"]?.stringValue {
            guard method == "gptq", let bits = gptq["bits"]?.intValue, GPTQLayout.supportedBits.contains(bits) else {
                throw QuantaError.unsupported(file, "quantization_config \(method) with bits \(gptq["bits"]?.serialized() ?? "none") is not read (gptq with 2, 3, 4 or 8 bits is)")
            }
            if let format = gptq["checkpoint_format"]?.stringValue, format != "gptq" {
                throw QuantaError.unsupported(file, "GPTQ checkpoint_format '\(format)' is not read (gptq v1 is)")
            }
            var overrides: [Override] = []
            for (key, entry) in gptq["dynamic"]?.objectValue ?? [] {
                let negative = key.hasPrefix("-:")
                let pattern = key.hasPrefix("-:") || key.hasPrefix("+:") ? String(key.dropFirst(2)) : key
                guard (try? Regex(pattern)) != nil else { throw QuantaError.malformed(file, "dynamic key '\(key)' is not a regular expression Quanta reads") }
                if negative { overrides.append(Override(.prefix(pattern), nil)); continue }
                let b = entry["bits"]?.intValue ?? bits
                guard GPTQLayout.supportedBits.contains(b) else { throw QuantaError.unsupported(file, "dynamic '\(key)': bits \(b) is not read (2, 3, 4 or 8)") }
                overrides.append(Override(.prefix(pattern), .gptq(bits: b)))
            }
            self.init(kind: .gptq(bits: bits), overrides: overrides)
        } else {
            return nil
        }
    }

    init(kind: Kind, overrides: [Override]) {
        self.kind = kind
        self.overrides = overrides
    }

    /// The kind of the module at `path` ("model.layers.0.mlp.down_proj"); nil when stored unquantized.
    public func kind(of path: String) -> Kind? {
        for entry in overrides where entry.match.matches(path) { return entry.kind }
        return kind
    }

    public var bits: Int {
        switch kind {
        case let .gptq(bits), let .mlx(bits, _): bits
        case .awq: AWQLayout.bits
        case let .compressedTensors(bits, _): bits
        }
    }

    /// The fp32 values `[out, in]` of the quantized linear stored for `name` ("….weight"), or nil
    /// when `name` is stored unquantized (or absent).
    public func dequantize(_ name: String, from model: ModelFolder) throws -> [Float]? {
        guard name.hasSuffix(".weight") else { return nil }
        let prefix = String(name.dropLast(".weight".count))
        let weights = model.weights
        guard let kind = kind(of: prefix) else { return nil }
        switch kind {
        case let .gptq(bits):
            guard weights.contains(prefix + ".qweight") else { return nil }
            return try GPTQLayout.dequantize(
                qweight: weights.integerTensor(prefix + ".qweight"), qzeros: weights.integerTensor(prefix + ".qzeros"),
                scales: weights.floatTensor(prefix + ".scales"), gIndex: weights.integerTensor(prefix + ".g_idx"),
                bits: bits, name: "\(model.path): \(prefix)").storage
        case let .compressedTensors(bits, groupSize):
            guard weights.contains(prefix + ".weight_packed") else { return nil }
            let shape = try weights.integerTensor(prefix + ".weight_shape", as: Int64.self).storage.map { Int(clamping: $0) }
            let zero = weights.contains(prefix + ".weight_zero_point") ? try weights.integerTensor(prefix + ".weight_zero_point", as: Int32.self) : nil
            return try CompressedTensorsLayout.dequantize(
                packed: weights.integerTensor(prefix + ".weight_packed"), scale: weights.floatTensor(prefix + ".weight_scale"), zeroPoint: zero,
                shape: shape, bits: bits, groupSize: groupSize, precision: weights.info(prefix + ".weight_scale").dtype, name: "\(model.path): \(prefix)").storage
        case let .awq(groupSize):
            guard weights.contains(prefix + ".qweight") else { return nil }
            return try AWQLayout.dequantize(qweight: weights.integerTensor(prefix + ".qweight"), qzeros: weights.integerTensor(prefix + ".qzeros"),
                                            scales: weights.floatTensor(prefix + ".scales"), groupSize: groupSize, name: "\(model.path): \(prefix)").storage
        case let .mlx(bits, groupSize):
            guard weights.contains(prefix + ".scales") else { return nil }
            return try MLXLayout.dequantize(
                weight: weights.integerTensor(name), scales: weights.floatTensor(prefix + ".scales"), biases: weights.floatTensor(prefix + ".biases"),
                bits: bits, groupSize: groupSize, precision: weights.info(prefix + ".scales").dtype, name: "\(model.path): \(prefix)").storage
        }
    }
}
