/// A dense tensor held in memory: row-major (C order) `shape`, elements in `storage`.
///
/// Quanta's working type is `Tensor<Float>`; packed quantized checkpoints are read as
/// integer tensors (`Tensor<Int32>`, `Tensor<Int64>`, `Tensor<Int8>`, `Tensor<UInt8>`).
public struct Tensor<Element: Sendable>: Sendable {
    /// Extent of each dimension, outermost first; `[]` is a scalar.
    public let shape: [Int]
    /// `shape.reduce(1, *)` elements in row-major order.
    public var storage: [Element]

    /// Creates a tensor; `storage.count` must equal the product of `shape`.
    public init(shape: [Int], storage: [Element]) throws {
        let count = try Tensor.elementCount(shape)
        guard count == storage.count else {
            throw QuantaError(.invalidArgument, "tensor",
                              "shape \(shape) holds \(count) elements but \(storage.count) were given")
        }
        self.shape = shape
        self.storage = storage
    }

    public var count: Int { storage.count }

    /// Product of `shape`, checked for negative extents and overflow.
    public static func elementCount(_ shape: [Int]) throws -> Int {
        var count = 1
        for extent in shape {
            guard extent >= 0 else {
                throw QuantaError(.invalidArgument, "tensor", "negative extent in shape \(shape)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow else {
                throw QuantaError(.invalidArgument, "tensor", "shape \(shape) overflows the element count")
            }
            count = product
        }
        return count
    }
}

extension Tensor: Equatable where Element: Equatable {}
