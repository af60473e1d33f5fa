import QuantaCore
import QuantaFormats
import QuantaIO

/// How a Hugging Face folder's linears are quantized, from its config.json: GPTQ v1
/// (`quantization_config.quant_method` "gptq"), AutoAWQ GEMM ("awq") or MLX affine
/// (`quantization` with `bits` and `group_size`). nil for an unquantized folder.
public enum QuantizedFolderScheme: Sendable, Equatable {
    case gptq(bits: Int)
    case mlx(bits: Int, groupSize: Int)
    case awq(groupSize: Int)
    /// compressed-tensors pack-quantized; `groupSize` nil for the channel strategy.
    case compressedTensors(bits: Int, groupSize: Int?)

    public init?(_ model: ModelFolder) throws {
        let json = model.files.configJSON
        if let mlx = json["quantization"] {
            guard let bits = mlx["bits"]?.intValue, let group = mlx["group_size"]?.intValue,
                  MLXLayout.supportedBits.contains(bits), group > 0, group <= 1 << 20 else {
                throw QuantaError.unsupported("\(model.path)/config.json", "quantization \(mlx.serialized()) is not an MLX affine layout Quanta reads")
            }
            if let mode = mlx["mode"]?.stringValue, mode != "affine" {
                throw QuantaError.unsupported("\(model.path)/config.json", "MLX quantization mode '\(mode)' is not read (affine is)")
            }
            self = .mlx(bits: bits, groupSize: group)
        } else if let ct = json["quantization_config"], ct["quant_method"]?.stringValue == "compressed-tensors" {
            let groups = ct["config_groups"]?.objectValue ?? []
            guard ct["format"]?.stringValue == "pack-quantized", groups.count == 1, let weights = groups[0].1["weights"],
                  let bits = weights["num_bits"]?.intValue, CompressedTensorsLayout.supportedBits.contains(bits),
                  weights["type"]?.stringValue ?? "int" == "int", let strategy = weights["strategy"]?.stringValue, ["group", "channel"].contains(strategy) else {
                throw QuantaError.unsupported("\(model.path)/config.json", "quantization_config \(ct.serialized()) is not a pack-quantized int scheme Quanta reads (one group, 4 or 8 bits, group or channel)")
            }
            let group = strategy == "group" ? weights["group_size"]?.intValue : nil
            if strategy == "group" && !(1...(1 << 20)).contains(group ?? 0) {
                throw QuantaError.malformed("\(model.path)/config.json", "group strategy without a positive group_size")
            }
            self = .compressedTensors(bits: bits, groupSize: group)
        } else if let awq = json["quantization_config"], awq["quant_method"]?.stringValue == "awq" {
            guard awq["bits"]?.intValue == AWQLayout.bits, let group = awq["group_size"]?.intValue, group > 0, group <= 1 << 20,
                  (awq["version"]?.stringValue ?? "gemm").lowercased() == "gemm" else {
                throw QuantaError.unsupported("\(model.path)/config.json", "quantization_config \(awq.serialized()) is not an AWQ GEMM layout Quanta reads (4 bits, groups)")
            }
            self = .awq(groupSize: group)
        } else if let gptq = json["quantization_config"], let method = gptq["quant_method"]?.stringValue {
            guard method == "gptq", let bits = gptq["bits"]?.intValue, GPTQLayout.supportedBits.contains(bits) else {
                throw QuantaError.unsupported("\(model.path)/config.json", "quantization_config \(method) with bits \(gptq["bits"]?.serialized() ?? "none") is not read (gptq with 2, 3, 4 or 8 bits is)")
            }
            if let format = gptq["checkpoint_format"]?.stringValue, format != "gptq" {
                throw QuantaError.unsupported("\(model.path)/config.json", "GPTQ checkpoint_format '\(format)' is not read (gptq v1 is)")
            }
            self = .gptq(bits: bits)
        } else {
            return nil
        }
    }

    public var bits: Int {
        switch self {
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
        switch self {
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
