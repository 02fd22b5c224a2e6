import XCTest

@testable import Detection

final class SymbolTableTests: XCTestCase {
    func testInternsDenseIdsInFirstSeenOrder() throws {
        var table = SymbolTable()
        let btc = try XCTUnwrap(SymbolKey("BTCUSDT"))
        let eth = try XCTUnwrap(SymbolKey("ETHUSDT"))
        XCTAssertNil(table.id(of: btc))
        XCTAssertEqual(table.intern(btc), 0)
        XCTAssertEqual(table.intern(eth), 1)
        XCTAssertEqual(table.intern(btc), 0)
        XCTAssertEqual(table.id(of: try XCTUnwrap(SymbolKey("btcusdt"))), 0, "lowercase is the same symbol")
        XCTAssertEqual(table.names, ["BTCUSDT", "ETHUSDT"])
        XCTAssertEqual(table.count, 2)
        XCTAssertEqual(table.key(1), eth)
    }

    func testManySymbolsSurviveRehashing() throws {
        var table = SymbolTable()
        let names = (0..<5_000).map { "SYM\($0)_X" }
        for (i, name) in names.enumerated() {
            XCTAssertEqual(table.intern(try XCTUnwrap(SymbolKey(name))), i)
        }
        for (i, name) in names.enumerated() {
            XCTAssertEqual(table.id(of: try XCTUnwrap(SymbolKey(name))), i)
            XCTAssertEqual(table.name(i), name)
        }
        XCTAssertNil(table.id(of: try XCTUnwrap(SymbolKey("SYM5000_X"))))
    }

    func testKeysDifferingOnlyInLengthOrLastByteDiffer() throws {
        let a = try XCTUnwrap(SymbolKey("A"))
        let aa = try XCTUnwrap(SymbolKey("AA"))
        let long1 = try XCTUnwrap(SymbolKey(String(repeating: "Z", count: 31) + "1"))
        let long2 = try XCTUnwrap(SymbolKey(String(repeating: "Z", count: 31) + "2"))
        XCTAssertNotEqual(a, aa)
        XCTAssertNotEqual(long1, long2)
        XCTAssertEqual(long1.string.count, 32)
        var table = SymbolTable()
        XCTAssertEqual([a, aa, long1, long2].map { table.intern($0) }, [0, 1, 2, 3])
    }

    func testInvalidKeys() {
        XCTAssertEqual(SymbolKey.make([UInt8]()), .failure(.empty))
        XCTAssertEqual(SymbolKey.make(Array(repeating: UInt8(ascii: "A"), count: 33)), .failure(.tooLong))
        XCTAssertEqual(SymbolKey.make(Array("BTC/USDT".utf8)), .failure(.invalidByte(UInt8(ascii: "/"))))
        XCTAssertNil(SymbolKey("BTC USDT"))
    }
}

final class Murmur2PartitionerTests: XCTestCase {
    /// Kafka's `UtilsTest.testMurmur2` vectors (Java `Utils.murmur2`), cross-checked with an
    /// independent implementation of the algorithm; plus the empty key.
    func testKafkaVectors() {
        let vectors: [(String, Int32)] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
            ("", 275_646_681),
        ]
        for (key, hash) in vectors {
            XCTAssertEqual(Murmur2Partitioner.murmur2(Array(key.utf8)), hash, key)
        }
    }

    func testPartitionIsPositiveHashModuloCount() {
        // (murmur2 & 0x7fffffff) % count, worked out by hand from the vectors above.
        XCTAssertEqual(Murmur2Partitioner.partition(key: Array("21".utf8), partitionCount: 12), 0)
        XCTAssertEqual(Murmur2Partitioner.partition(key: Array("foobar".utf8), partitionCount: 12), 6)
        XCTAssertEqual(Murmur2Partitioner.partition(key: Array("abc".utf8), partitionCount: 12), 3)
        XCTAssertEqual(Murmur2Partitioner.partition(key: Array("BTCUSDT".utf8), partitionCount: 12), 2)
        XCTAssertEqual(Murmur2Partitioner.partition(key: Array("ETHUSDT".utf8), partitionCount: 12), 5)
        XCTAssertEqual(Murmur2Partitioner.partition(key: Array("BTCUSDT".utf8), partitionCount: 4), 2)
        XCTAssertEqual(Murmur2Partitioner.partition(key: Array("ETHUSDT".utf8), partitionCount: 4), 1)
        XCTAssertEqual(Murmur2Partitioner.partition(key: Array("BTCUSDT".utf8), partitionCount: 0), 0, "count < 1 acts as 1")
        for n in 0..<200 {
            let p = Murmur2Partitioner.partition(key: Array("KEY\(n)".utf8), partitionCount: 7)
            XCTAssertTrue((0..<7).contains(p))
        }
    }

    func testSymbolKeyBytesGiveTheSamePartitionAsTheString() throws {
        let key = try XCTUnwrap(SymbolKey("btcusdt"))
        let viaKey = key.withUnsafeBytes { Murmur2Partitioner.partition(key: $0, partitionCount: 12) }
        XCTAssertEqual(viaKey, Murmur2Partitioner.partition(key: Array("BTCUSDT".utf8), partitionCount: 12))
    }
}
