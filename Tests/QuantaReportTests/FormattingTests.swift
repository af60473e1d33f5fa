import QuantaReport
import XCTest

final class FormattingTests: XCTestCase {
    func testFixedAndGrouped() {
        XCTAssertEqual(fixed(3.14159, 2), "3.14")
        XCTAssertEqual(fixed(-0.004, 2), "0.00")
        XCTAssertEqual(fixed(-1.005, 1), "-1.0")
        XCTAssertEqual(fixed(2.5, 0), "3")
        XCTAssertEqual(fixed(1234.5678, 0), "1235")
        XCTAssertEqual(fixed(0.000123, 6), "0.000123")
        XCTAssertEqual(fixed(.infinity, 2), "inf")
        XCTAssertEqual(grouped(1234567), "1,234,567")
        XCTAssertEqual(grouped(-999), "-999")
        XCTAssertEqual(megabytes(27_276_288), "27.28 MB")
    }
}
