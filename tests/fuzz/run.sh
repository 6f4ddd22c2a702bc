#!/usr/bin/env bash
# Runs the decision fuzzer: encodes the readable seeds (seeds/*.txtpb; allocate-* are
# AllocateRequest, report-* LoadReport) into a corpus, then fuzzes for SECONDS on one core and
# prints libFuzzer's totals. Exits non-zero on a crash, a sanitizer report or a failed check.
#   tests/fuzz/run.sh BUILD_DIR SECONDS [extra libFuzzer flags]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1 seconds=$2
shift 2
corpus=$(mktemp -d /tmp/allot-fuzz-corpus-XXXXXX)
trap 'rm -rf "$corpus"' EXIT
for seed in "$here"/seeds/*.txtpb; do
  name=$(basename "$seed" .txtpb)
  case $name in
    allocate-*) type=AllocateRequest prefix='\x00' ;;
    report-*) type=LoadReport prefix='\x01' ;;
    *) echo "fuzz: seed $name is neither allocate-* nor report-*" >&2; exit 2 ;;
  esac
  { printf "$prefix"; protoc --encode="allot.v1.$type" -I "$here/../../proto" \
      allot/v1/allocator.proto < "$seed"; } > "$corpus/$name"
done
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# grep hides libFuzzer's progress lines; the fuzzer's exit status is what counts. (A `|| true`
# after the pipeline would reset PIPESTATUS under pipefail and hide every crash.)
set +e
"$build/allot_fuzz_decide" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  "$@" "$corpus" 2>&1 | grep -E '^(INFO: seed|#[0-9]+ +DONE|Done|stat::number_of_executed_units|stat::average_exec_per_sec|==|SUMMARY|fuzz:|artifact_prefix|Base64)'
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
  echo "fuzz: the fuzzer failed (exit $status); the input is the crash-* file named above" >&2
fi
exit "$status"
