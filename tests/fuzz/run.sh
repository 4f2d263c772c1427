#!/usr/bin/env bash
# run.sh - runs the libFuzzer targets of build/fuzz/ over their seeds and then for a bounded time.
#
# Usage: tests/fuzz/run.sh [--seconds N] [--rss MB] [--jobs N] [--keep] [TARGET...]
#   --seconds N  total time of each target, seeds included (default 8)
#   --rss MB     memory limit of each target (default 2048)
#   --jobs N     targets run at once (default: the number of CPUs)
#   --keep       keep new corpus entries in tests/fuzz/out/<target>/corpus (git-ignored)
#                and start from them next time; without it they go to a scratch directory
#   TARGET       e.g. chargereq (default: every tests/fuzz/fuzz_*.c)
# Each target reads its seeds from tests/fuzz/corpus/<target>/. Leak detection
# is on. A crash, leak, timeout, out-of-memory or sanitizer report fails the
# target; its input is saved in tests/fuzz/out/<target>/ and the report is
# printed. Exits 1 when any target failed. Each run works in a directory of
# its own, build/fuzz/run.XXXXXX (logs, scratch corpora), so runs started at
# once (two make test) do not disturb each other; it is removed when every
# target passed.
set -uo pipefail   # no -e: every target runs, and failures are counted

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 2
seconds=8 rss=2048 jobs=$(nproc 2>/dev/null || echo 2) keep=0
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) seconds=$2; shift 2 ;;
	--rss) rss=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) sed -n '2,18p' "$0" >&2; exit 2 ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done
if [ ${#targets[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		t=${f#tests/fuzz/fuzz_}
		targets+=("${t%.c}")
	done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p build/fuzz
run=$(mktemp -d build/fuzz/run.XXXXXX)

# fuzz_one TARGET: runs one target in the background; its exit status is the target's.
fuzz_one() {
	local t=$1 bin=build/fuzz/fuzz_$1 out=tests/fuzz/out/$1 corpus

	if [ "$keep" = 1 ]; then
		corpus=$out/corpus
	else
		corpus=$run/corpus/$t
	fi
	mkdir -p "$corpus" "$out" "tests/fuzz/corpus/$t"
	"$bin" -max_total_time="$seconds" -rss_limit_mb="$rss" -malloc_limit_mb="$rss" \
		-timeout=10 -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$out/" \
		"$corpus" "tests/fuzz/corpus/$t" >"$run/$t.log" 2>&1
	echo $? >"$run/$t.rc"
}

# report TARGET STATUS: one line per target; a failure also gets its report.
report() {
	local t=$1 rc=$2 log=$run/$1.log done runs

	done=$(grep -aE '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		printf 'ok     %-10s %s runs in %ss; %s\n' "$t" "${runs:-?}" "$seconds" \
			"$(sed -E 's/^#[0-9]+[[:space:]]+DONE[[:space:]]+//; s/ lim:.*//' <<<"$done")"
		return
	fi
	printf 'FAILED %-10s exit status %s; log %s\n' "$t" "$rc" "$log"
	# The sanitizer or invariant report, and where the input was saved.
	grep -aE '^(==[0-9]+==ERROR|==fuzz==|SUMMARY|.*runtime error:|artifact_prefix|Test unit written to|  #[0-9]+ )' "$log" |
		head -40 | sed 's/^/       /'
}

# Ctrl-C or a test budget's SIGTERM: stop the targets too.
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM
for t in "${targets[@]}"; do
	[ -x "build/fuzz/fuzz_$t" ] || continue
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n
	done
	fuzz_one "$t" &
done
wait
failed=()
for t in "${targets[@]}"; do
	if [ ! -x "build/fuzz/fuzz_$t" ]; then
		echo "FAILED $t: build/fuzz/fuzz_$t is missing (make fuzz-build)"
		failed+=("$t")
		continue
	fi
	rc=$(cat "$run/$t.rc" 2>/dev/null || echo 255)
	report "$t" "$rc"
	[ "$rc" -eq 0 ] || failed+=("$t")
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, ${#failed[@]} failed${failed[*]:+: ${failed[*]}}"
if [ ${#failed[@]} -eq 0 ]; then
	rm -rf "$run"
else
	echo "fuzz: logs in $run"
	exit 1
fi
