#!/bin/sh
# Exits 0 when this Swift toolchain can build a libFuzzer binary (`-sanitize=fuzzer`, Linux,
# linked with lld as `make fuzz` does), 1 with the reason on stderr otherwise.
set -u
SWIFTC="${SWIFTC:-swiftc}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/probe.swift" <<'SWIFT'
@_cdecl("LLVMFuzzerTestOneInput")
public func probe(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt { 0 }
SWIFT
if "$SWIFTC" -sanitize=fuzzer,address -parse-as-library -use-ld=lld "$dir/probe.swift" -o "$dir/probe" >"$dir/log" 2>&1 \
	&& "$dir/probe" -runs=1 >>"$dir/log" 2>&1; then
	exit 0
fi
echo "libFuzzer is not available in this toolchain ($("$SWIFTC" --version 2>&1 | head -1)):" >&2
tail -5 "$dir/log" >&2
exit 1
