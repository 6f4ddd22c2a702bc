#!/usr/bin/env bash
# The whole test suite: install, build with warnings as errors, run every test; build the container
# image with podman and run it from its root filesystem (ALLOT_SKIP_IMAGE=1 skips it); then the
# policy unit tests (decision path, reservoir, controllers, control loop, telemetry: the concurrent
# code) again under ThreadSanitizer and under AddressSanitizer + UBSan. ALLOT_FULL_SANITIZERS=1 runs every test there (slow: LibTorch code is
# rebuilt); and the request path under libFuzzer for ALLOT_FUZZ_SECONDS (60). Exits non-zero when
# anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

bash scripts/build.sh build -DALLOT_WERROR=ON
(cd build && ctest --output-on-failure -j2 --timeout 300)

# The container image, built with podman and run from its root filesystem (needs root).
if [[ ${ALLOT_SKIP_IMAGE:-0} != 1 ]]; then
  bash deploy/checks/image.sh
fi

if [[ ${ALLOT_SKIP_SANITIZERS:-0} != 1 ]]; then
  # The request path under libFuzzer (clang, ASan + UBSan) from the seed corpus, briefly;
  # tests/fuzz/run.sh build-fuzz SECONDS runs it for longer.
  ALLOT_TARGETS=allot_fuzz_decide bash scripts/build.sh build-fuzz -DALLOT_FUZZ=ON \
    -DALLOT_WERROR=ON -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14
  bash tests/fuzz/run.sh build-fuzz "${ALLOT_FUZZ_SECONDS:-60}"

  # ThreadSanitizer over the policy's concurrent code and the server's threads (control runner,
  # bundle watcher, metrics) in a binary without gRPC. The live-server tests are not run here:
  # Debian's gRPC and Abseil are not instrumented and synchronise through futexes TSan cannot
  # see, so their inlined headers report races that are not there (tests/tsan.supp).
  ALLOT_TARGETS="allot_unit_tests allot_tsan_server_tests" bash scripts/build.sh build-tsan \
    -DALLOT_TSAN=ON -DALLOT_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  # The controllers' settling tests are long single-threaded simulations (two minutes under
  # TSan) with nothing concurrent to check; everything else, the engine's threaded tests among
  # them, runs.
  (cd build-tsan && TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/../tests/tsan.supp" \
    ./allot_unit_tests --gtest_brief=1 \
    --gtest_filter='-ControlLoopTest.Mpc*:Kinds/ControllerKindTest.*' &&
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/../tests/tsan.supp" \
    ./allot_tsan_server_tests --gtest_brief=1)

  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_container_overflow=0
  export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  if [[ ${ALLOT_FULL_SANITIZERS:-0} == 1 ]]; then
    bash scripts/build.sh build-asan -DALLOT_ASAN=ON -DALLOT_WERROR=ON -DCMAKE_BUILD_TYPE=Debug
    (cd build-asan && ctest --output-on-failure -j2 --timeout 600)
  else
    ALLOT_TARGETS=allot_unit_tests bash scripts/build.sh build-asan -DALLOT_ASAN=ON -DALLOT_WERROR=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
    (cd build-asan && ./allot_unit_tests --gtest_brief=1)
  fi
fi
