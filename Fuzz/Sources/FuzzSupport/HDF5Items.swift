#if canImport(Glibc)
import Glibc
#endif
import QuantaIO

/// One thing an HDF5 file holds, as Quanta's readers see it.
public enum HDF5Item {
    case root(String, HDF5Attribute)
    case group(String, [(String, HDF5Attribute)])
    case dataset(String, HDF5Values, shape: [Int], [(String, HDF5Attribute)])
}

public enum HDF5Values {
    case f32([Float]), f64([Double]), i64([Int64])

    var count: Int {
        switch self {
        case let .f32(v): v.count
        case let .f64(v): v.count
        case let .i64(v): v.count
        }
    }
}

/// The HDF5 library parses the container; what Quanta must survive is any *content* a file
/// can hold: missing or retyped attributes, absurd counts, wrong shapes, NaNs, ids out of
/// range. A harness starts from a valid file's items, lets fuzzer bytes drop, rename, retype
/// and reshape them and add new ones, writes the result with the real writer and reads it.
public enum HDF5Fuzz {
    static let strings = ["", "q", "attn_qkv", "attn_output", "ffn_gate_up", "ffn_down", "output", "full", "diag", "none",
                          "quanta-calibration-statistics", "random", "a,b", ",", "blk.0.attn_q.weight"]
    static let integers: [Int64] = [0, 1, -1, 2, 3, 4, 7, 8, 64, 255, 4096, Int64(Int32.max), 1 << 32, 1 << 40, Int64.max, Int64.min, -2]
    static let doubles: [Double] = [0, -0.0, 1, -1, 0.5, 1e300, -1e-300, .infinity, -.infinity, .nan, 2.5]

    /// `items` changed as `fuzz` says; extra names come from `names`.
    public static func mutate(_ items: [HDF5Item], names: [String], with fuzz: inout FuzzBytes) -> [HDF5Item] {
        var out: [HDF5Item] = []
        for item in items {
            switch fuzz.byte() % 8 {
            case 4: continue
            case 5: out.append(retypeAttributes(item, &fuzz))
            case 6: out.append(reshape(item, &fuzz))
            case 7: out.append(rename(item, names: names, &fuzz))
            default: out.append(item)
            }
        }
        for _ in 0..<fuzz.int(0...3) where !fuzz.isEmpty {
            let name = fuzz.byte() < 200 ? fuzz.pick(names) : fuzz.string()
            switch fuzz.byte() % 3 {
            case 0: out.append(.root(name, attribute(&fuzz)))
            case 1: out.append(.group(name, (0..<fuzz.int(0...4)).map { _ in (fuzz.pick(names), attribute(&fuzz)) }))
            default:
                let shape = (0..<fuzz.int(0...3)).map { _ in fuzz.int(0...9) }
                out.append(.dataset(name, values(kind: fuzz.byte(), count: shape.reduce(1, *), &fuzz), shape: shape, []))
            }
        }
        return out
    }

    /// Writes `items` in order with `HDF5Store`; items the library refuses (a dataset in a
    /// group that does not exist, a name used twice) are left out, as a writer would fail on them.
    public static func write(_ items: [HDF5Item], to path: String) {
        unlink(path)
        guard let store = try? HDF5Store(path: path, mode: .create) else { fatalError("cannot create \(path)") }
        var root: [(String, HDF5Attribute)] = []
        for item in items {
            switch item {
            case let .root(name, value): if !root.contains(where: { $0.0 == name }) { root.append((name, value)) }
            case let .group(name, attributes): try? store.createGroup(name, attributes: unique(attributes))
            case let .dataset(name, values, shape, attributes):
                switch values {
                case let .f32(v): try? store.write(name, v, shape: shape, compression: 0, attributes: unique(attributes))
                case let .f64(v): try? store.write(name, v, shape: shape, compression: 0, attributes: unique(attributes))
                case let .i64(v): try? store.write(name, v, shape: shape, compression: 0, attributes: unique(attributes))
                }
            }
        }
        try? store.setRootAttributes(root)
        try? store.close()
    }

    static func unique(_ attributes: [(String, HDF5Attribute)]) -> [(String, HDF5Attribute)] {
        var seen = Set<String>()
        return attributes.filter { seen.insert($0.0).inserted }
    }

    static func attribute(_ fuzz: inout FuzzBytes) -> HDF5Attribute {
        switch fuzz.byte() % 4 {
        case 0: .string(fuzz.byte() < 200 ? fuzz.pick(strings) : fuzz.string())
        case 1: .int64(fuzz.pick(integers))
        case 2: .int64(Int64(bitPattern: fuzz.u64()))
        default: .float64(fuzz.pick(doubles))
        }
    }

    static func changed(_ attributes: [(String, HDF5Attribute)], _ fuzz: inout FuzzBytes) -> [(String, HDF5Attribute)] {
        attributes.map { fuzz.byte() % 3 == 0 ? ($0.0, attribute(&fuzz)) : $0 }
    }

    static func retypeAttributes(_ item: HDF5Item, _ fuzz: inout FuzzBytes) -> HDF5Item {
        switch item {
        case let .root(name, _): .root(name, attribute(&fuzz))
        case let .group(name, attributes): .group(name, changed(attributes, &fuzz))
        case let .dataset(name, values, shape, attributes): .dataset(name, values, shape: shape, changed(attributes, &fuzz))
        }
    }

    static func values(kind: UInt8, count: Int, _ fuzz: inout FuzzBytes) -> HDF5Values {
        switch kind % 3 {
        case 0: .f32((0..<count).map { _ in Float(fuzz.pick(doubles)) })
        case 1: .f64((0..<count).map { _ in fuzz.pick(doubles) })
        default: .i64((0..<count).map { _ in fuzz.pick(integers) })
        }
    }

    static func reshape(_ item: HDF5Item, _ fuzz: inout FuzzBytes) -> HDF5Item {
        guard case let .dataset(name, old, shape, attributes) = item else { return item }
        var newShape = shape
        switch fuzz.byte() % 4 {
        case 0 where !newShape.isEmpty: newShape[fuzz.int(0...(newShape.count - 1))] = fuzz.int(0...9)
        case 1: newShape.append(fuzz.int(0...4))
        case 2 where !newShape.isEmpty: newShape.removeLast()
        default: break
        }
        let count = newShape.reduce(1, *)
        let kind = fuzz.byte()
        if kind % 4 == 3, old.count >= count {
            // Same values, fewer of them: keeps real numbers where the shape allows.
            switch old {
            case let .f32(v): return .dataset(name, .f32(Array(v.prefix(count))), shape: newShape, attributes)
            case let .f64(v): return .dataset(name, .f64(Array(v.prefix(count))), shape: newShape, attributes)
            case let .i64(v): return .dataset(name, .i64(Array(v.prefix(count))), shape: newShape, attributes)
            }
        }
        return .dataset(name, values(kind: kind, count: count, &fuzz), shape: newShape, attributes)
    }

    static func rename(_ item: HDF5Item, names: [String], _ fuzz: inout FuzzBytes) -> HDF5Item {
        let name = fuzz.byte() < 200 ? fuzz.pick(names) : fuzz.string()
        switch item {
        case let .root(_, value): return .root(name, value)
        case let .group(_, attributes): return .group(name, attributes)
        case let .dataset(_, values, shape, attributes): return .dataset(name, values, shape: shape, attributes)
        }
    }
}
