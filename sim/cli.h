// The allot-sim command line (generate, evaluate, drive, testbench) as a library function, so tests
// can run it and check its errors without a subprocess.
#pragma once

#include <ostream>

namespace allot::sim {

// Returns the process exit code: 0 ok, 1 runtime failure, 2 bad usage (message on `err`).
int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace allot::sim
