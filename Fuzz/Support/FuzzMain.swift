import Foundation

/// The entry of every fuzz target (`make fuzz`; see docs/security.md).
///
/// Built with `-DFUZZING -sanitize=fuzzer` (what `make fuzz` does), `run` hands control to
/// libFuzzer, which calls `body` with generated inputs and understands its usual flags
/// (`-max_total_time=60 CORPUS_DIR...`). Built without, the executable replays inputs instead:
/// every file named on the command line (directories are walked), once each, so a crash found
/// by the fuzzer can be reproduced in a debugger: `FuzzTradeParser crash-1234abcd`.
public enum FuzzMain {
    public typealias Body = (UnsafeRawBufferPointer) -> Void

    public static func run(_ name: String, _ body: @escaping Body) -> Never {
        #if FUZZING
        target = body
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzMain.target?(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
        #else
        let paths = CommandLine.arguments.dropFirst()
        guard !paths.isEmpty else {
            FileHandle.standardError.write(Data("usage: \(name) FILE_OR_DIRECTORY...  (replays inputs; build with `make fuzz` to fuzz)\n".utf8))
            exit(2)
        }
        var count = 0
        for path in paths {
            for file in files(at: path) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    FileHandle.standardError.write(Data("\(name): cannot read \(file)\n".utf8))
                    exit(1)
                }
                data.withUnsafeBytes { body($0) }
                count += 1
            }
        }
        print("\(name): \(count) inputs replayed, no crash")
        exit(0)
        #endif
    }

    #if FUZZING
    // Written once before libFuzzer starts, then only read from its single fuzzing thread.
    nonisolated(unsafe) static var target: Body?
    #endif

    static func files(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [path] }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().filter { !$0.hasPrefix(".") }.map { path + "/" + $0 }
    }
}

#if FUZZING
/// libFuzzer's driver (from `-sanitize=fuzzer`): parses its flags and runs the fuzzing loop.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt
#endif
