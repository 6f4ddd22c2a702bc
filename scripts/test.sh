#!/usr/bin/env bash
# The whole test suite: install, build with warnings as errors, run every test; then the same
# tests again in an AddressSanitizer + UBSan build. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

bash scripts/build.sh build -DALLOT_WERROR=ON
(cd build && ctest --output-on-failure -j2 --timeout 300)

if [[ ${ALLOT_SKIP_SANITIZERS:-0} != 1 ]]; then
  bash scripts/build.sh build-asan -DALLOT_ASAN=ON -DALLOT_WERROR=ON -DCMAKE_BUILD_TYPE=Debug
  # gRPC keeps some process-lifetime singletons; leaks are checked, those are suppressed.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest --output-on-failure -j2 --timeout 600)
fi
