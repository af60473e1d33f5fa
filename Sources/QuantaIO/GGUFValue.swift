import QuantaCore

/// GGUF metadata value types, with their on-disk ids.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of one value on disk, or nil for variable-size types (string, array).
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The smallest number of bytes a value of this type can take (for count validation).
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }

    public var name: String {
        switch self {
        case .uint8: "u8"
        case .int8: "i8"
        case .uint16: "u16"
        case .int16: "i16"
        case .uint32: "u32"
        case .int32: "i32"
        case .float32: "f32"
        case .bool: "bool"
        case .string: "string"
        case .array: "array"
        case .uint64: "u64"
        case .int64: "i64"
        case .float64: "f64"
        }
    }
}

/// One GGUF metadata value. Arrays keep their declared element type (also when empty), and
/// may nest.
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        case .array: .array
        }
    }

    /// Any integer type as Int (nil when it does not fit or is not an integer).
    public var intValue: Int? {
        switch self {
        case let .uint8(v): Int(v)
        case let .int8(v): Int(v)
        case let .uint16(v): Int(v)
        case let .int16(v): Int(v)
        case let .uint32(v): Int(v)
        case let .int32(v): Int(v)
        case let .uint64(v): Int(exactly: v)
        case let .int64(v): Int(v)
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case let .float32(v): Double(v)
        case let .float64(v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [GGUFValue]? { if case let .array(_, a) = self { a } else { nil } }

    /// A JSON rendering; arrays longer than `arrayLimit` become
    /// `{"type": "array", "element_type": ..., "length": n, "first": [...]}`.
    public func json(arrayLimit: Int = .max) -> JSONValue {
        switch self {
        case let .uint8(v): .integer(Int64(v))
        case let .int8(v): .integer(Int64(v))
        case let .uint16(v): .integer(Int64(v))
        case let .int16(v): .integer(Int64(v))
        case let .uint32(v): .integer(Int64(v))
        case let .int32(v): .integer(Int64(v))
        case let .uint64(v): Int64(exactly: v).map { .integer($0) } ?? .number(Double(v))
        case let .int64(v): .integer(v)
        case let .float32(v): .number(Double(v))
        case let .float64(v): .number(v)
        case let .bool(v): .bool(v)
        case let .string(v): .string(v)
        case let .array(elementType, elements):
            if elements.count <= arrayLimit {
                .array(elements.map { $0.json(arrayLimit: arrayLimit) })
            } else {
                .object([
                    ("type", .string("array")),
                    ("element_type", .string(elementType.name)),
                    ("length", .integer(Int64(elements.count))),
                    ("first", .array(elements.prefix(8).map { $0.json(arrayLimit: arrayLimit) })),
                ])
            }
        }
    }

    /// A one-line human rendering; long arrays and strings are abbreviated.
    public func summary(maxLength: Int = 80) -> String {
        switch self {
        case let .string(s):
            let flat = s.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\\n")
            return flat.count > maxLength ? "\"\(flat.prefix(maxLength))...\" (\(s.utf8.count) bytes)" : "\"\(flat)\""
        case let .array(elementType, elements):
            if elements.count > 8 {
                let head = elements.prefix(4).map { $0.summary(maxLength: 24) }.joined(separator: ", ")
                return "[\(elementType.name) x \(elements.count)] [\(head), ...]"
            }
            return "[" + elements.map { $0.summary(maxLength: 24) }.joined(separator: ", ") + "]"
        case let .float32(v): return "\(v)"
        case let .float64(v): return "\(v)"
        case let .bool(v): return "\(v)"
        default: return intValue.map(String.init) ?? "?"
        }
    }
}

