#!/usr/bin/env bash
# coverage.sh - line and branch coverage of src/ by the fuzz corpora (make fuzz-coverage).
#
# Usage: tests/fuzz/coverage.sh COV_DIR TARGET...
#   Runs each COV_DIR/fuzz_TARGET (built with -fprofile-instr-generate) once
#   over tests/fuzz/corpus/TARGET and, when it exists, tests/fuzz/out/TARGET/corpus,
#   then prints llvm-cov's report for the src/ files the targets link.
#   The HTML report goes to COV_DIR/html/index.html.
set -euo pipefail

cov=$1
shift
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
profdata=$(command -v llvm-profdata || command -v llvm-profdata-14)
llvmcov=$(command -v llvm-cov || command -v llvm-cov-14)
rm -rf "$cov/prof"
mkdir -p "$cov/prof"
objects=()
for t in "$@"; do
	# libFuzzer writes into its first directory: a scratch one, never the seeds.
	rm -rf "$cov/scratch/$t"
	mkdir -p "$cov/scratch/$t"
	dirs=("$cov/scratch/$t" "tests/fuzz/corpus/$t")
	[ -d "tests/fuzz/out/$t/corpus" ] && dirs+=("tests/fuzz/out/$t/corpus")
	LLVM_PROFILE_FILE="$cov/prof/$t.profraw" "$cov/fuzz_$t" -runs=0 "${dirs[@]}" \
		>"$cov/prof/$t.log" 2>&1 || { echo "coverage.sh: fuzz_$t failed, see $cov/prof/$t.log" >&2; exit 1; }
	objects+=(-object "$cov/fuzz_$t")
done
"$profdata" merge -sparse -o "$cov/prof/all.profdata" "$cov"/prof/*.profraw
# Only the code under test: not the targets themselves, nor system headers.
"$llvmcov" report "${objects[@]:1}" -instr-profile="$cov/prof/all.profdata" \
	-ignore-filename-regex='(tests/|/usr/)'
"$llvmcov" show "${objects[@]:1}" -instr-profile="$cov/prof/all.profdata" \
	-ignore-filename-regex='(tests/|/usr/)' -format=html -output-dir="$cov/html" >/dev/null
echo "coverage.sh: HTML report in $cov/html/index.html"
