// Spearman rank correlation, for the trainer's validation metrics and the simulator's r_s.
#pragma once

#include <span>

namespace allot::models {

// Average ranks for ties; 0 when either side is constant.
double SpearmanCorrelation(std::span<const double> a, std::span<const double> b);

}  // namespace allot::models
