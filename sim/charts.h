// PNG charts of an evaluation (lambda, CPU vs target, revenue over the period) through gnuplot.
#pragma once

#include <string>

#include "sim/evaluation.h"
#include "sim/world.h"

namespace allot::sim {

// Writes DIR/<policy>.tsv, DIR/charts.gp and, when gnuplot is installed, DIR/lambda.png,
// DIR/cpu.png and DIR/revenue.png. Returns false (with *message set) when it could not draw.
// `start_hour` and `compression` map simulated seconds to the hour of day on the x axis.
bool WriteCharts(const std::string& dir, const World& world, const Evaluation& evaluation,
                 double start_hour, std::string* message);

}  // namespace allot::sim
