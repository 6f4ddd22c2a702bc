// allot-sim: the serving simulator (see sim/cli.h).
#include <iostream>

#include "sim/cli.h"

int main(int argc, char** argv) { return allot::sim::RunCli(argc, argv, std::cout, std::cerr); }
