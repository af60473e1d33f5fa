import QuantaCore
import QuantaIO

/// Reads every tensor of a safetensors file or collection the way the pipeline does, so
/// fuzzed headers reach the value conversions.
public func readAllTensors(_ infos: [SafetensorsTensorInfo], float: (String) throws -> Tensor<Float>,
                           integer: (SafetensorsTensorInfo) throws -> Int) {
    for info in infos {
        if info.dtype.isFloatingPoint {
            if let t = try? float(info.name) { precondition(t.storage.count == info.elementCount, "\(info.name): wrong value count") }
        } else {
            _ = try? integer(info)
        }
    }
}

/// Reads an integer tensor as its own width and signedness; returns its element count.
public func readIntegerTensor(_ info: SafetensorsTensorInfo, from file: SafetensorsCollection) throws -> Int {
    switch info.dtype {
    case .i8: try file.integerTensor(info.name, as: Int8.self).storage.count
    case .u8, .bool: try file.integerTensor(info.name, as: UInt8.self).storage.count
    case .i16: try file.integerTensor(info.name, as: Int16.self).storage.count
    case .u16: try file.integerTensor(info.name, as: UInt16.self).storage.count
    case .i32: try file.integerTensor(info.name, as: Int32.self).storage.count
    case .u32: try file.integerTensor(info.name, as: UInt32.self).storage.count
    case .i64: try file.integerTensor(info.name, as: Int64.self).storage.count
    case .u64: try file.integerTensor(info.name, as: UInt64.self).storage.count
    default: try file.rawBytes(info.name).count
    }
}
