// The fast path's kernels against plain loops: every shape the blocked code splits differently
// (passes of eight, four, two and one blocks, a zero-padded tail block, odd and even numbers of
// inputs, rows in groups of four and rows left over), and the vector exponential over every tail
// length.
#include "models/kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace allot::models::kernels {
namespace {

struct Layer {
  int n = 0, out = 0;
  std::vector<float> wt, b;  // laid out as MatMulRows reads them: [n][PaddedWidth(out)], padded
};

Layer RandomLayer(int n, int out, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Layer l{n, out, std::vector<float>(static_cast<size_t>(n * PaddedWidth(out)), 0.0f),
          std::vector<float>(static_cast<size_t>(PaddedWidth(out)), 0.0f)};
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) l.wt[static_cast<size_t>(i * PaddedWidth(out) + o)] = u(rng);
  for (int o = 0; o < out; ++o) l.b[static_cast<size_t>(o)] = u(rng);
  return l;
}

// Runs MatMulRows on `rows` random rows and returns the outputs, checking that nothing past the
// rows' outputs was written.
std::vector<float> RunRows(const Layer& l, const std::vector<float>& x, int rows) {
  constexpr float kSentinel = 12345.0f;
  std::vector<float> y(static_cast<size_t>(rows * l.out) + 16, kSentinel);
  MatMulRows(l.wt.data(), l.b.data(), l.n, l.out, x.data(), l.n, rows, y.data());
  for (size_t k = static_cast<size_t>(rows * l.out); k < y.size(); ++k)
    EXPECT_EQ(y[k], kSentinel) << "wrote past the outputs: n " << l.n << " out " << l.out;
  y.resize(static_cast<size_t>(rows * l.out));
  return y;
}

TEST(KernelsTest, ProductsMatchAPlainLoopForEveryBlockSplit) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const int out : {1, 7, 8, 9, 31, 32, 33, 62, 64, 65, 124, 130}) {
    for (const int n : {1, 12, 13, 32}) {
      const Layer l = RandomLayer(n, out, rng);
      for (const int rows : {1, 2, 4, 5, 9}) {
        std::vector<float> x(static_cast<size_t>(rows * n));
        for (float& v : x) v = u(rng);
        const std::vector<float> y = RunRows(l, x, rows);
        for (int r = 0; r < rows; ++r) {
          for (int o = 0; o < out; ++o) {
            double expected = l.b[static_cast<size_t>(o)];
            for (int i = 0; i < n; ++i)
              expected += static_cast<double>(x[static_cast<size_t>(r * n + i)]) *
                          l.wt[static_cast<size_t>(i * PaddedWidth(out) + o)];
            ASSERT_NEAR(y[static_cast<size_t>(r * out + o)], expected, 1e-5 * (1 + n))
                << "n " << n << " out " << out << " rows " << rows << " row " << r;
          }
        }
      }
    }
  }
}

// A row's outputs are the same bits whichever rows it is computed with: the single-row passes
// and the four-row groups add in the same order.
TEST(KernelsTest, ARowsOutputsDoNotDependOnItsNeighbours) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const int out : {7, 32, 62, 124, 130}) {
    for (const int n : {13, 32}) {
      const Layer l = RandomLayer(n, out, rng);
      std::vector<float> x(static_cast<size_t>(5 * l.n));
      for (float& v : x) v = u(rng);
      const std::vector<float> together = RunRows(l, x, 5);  // one group of four, one row left over
      for (int r = 0; r < 5; ++r) {
        const std::vector<float> row(x.begin() + r * l.n, x.begin() + (r + 1) * l.n);
        const std::vector<float> alone = RunRows(l, row, 1);
        for (int o = 0; o < out; ++o)
          EXPECT_EQ(alone[static_cast<size_t>(o)], together[static_cast<size_t>(r * out + o)])
              << "out " << out << " n " << n << " row " << r << " output " << o;
      }
    }
  }
}

// The widest form serves; a machine without AVX-512 (or AVX) serves a narrower one, which must
// give the same bits: the same sums in the same order, no fused multiply-add.
TEST(KernelsTest, EveryFormOfTheProductsGivesTheSameBits) {
  const std::vector<MatMulForm> forms = MatMulFormsForTesting();
  ASSERT_FALSE(forms.empty());
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const int out : {7, 32, 62, 124, 130}) {
    for (const int n : {1, 13, 32, 64}) {
      for (const int rows : {1, 5}) {
        const Layer l = RandomLayer(n, out, rng);
        std::vector<float> x(static_cast<size_t>(rows * n));
        for (float& v : x) v = u(rng);
        std::vector<float> widest(static_cast<size_t>(rows * out));
        forms.front()(l.wt.data(), l.b.data(), n, out, x.data(), n, rows, widest.data());
        for (size_t f = 1; f < forms.size(); ++f) {
          std::vector<float> y(widest.size());
          forms[f](l.wt.data(), l.b.data(), n, out, x.data(), n, rows, y.data());
          for (size_t k = 0; k < y.size(); ++k) {
            ASSERT_EQ(y[k], widest[k]) << "form " << f << " of " << forms.size() << ", n " << n
                                       << " out " << out << " rows " << rows << " at " << k;
          }
        }
      }
    }
  }
}

TEST(KernelsTest, WeightsStartOnACacheLine) {
  for (const size_t n : {1, 3, 17, 1000}) {
    const AlignedFloats a(n, 1.0f), b(n + 1, 2.0f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 64, 0u) << n;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u) << n;
  }
}

TEST(KernelsTest, ExpIsExpfWithinAFewUlpOverEveryTailLength) {
  for (size_t n = 0; n <= 35; ++n) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = -9.0f + 0.61f * static_cast<float>(i);
    std::vector<float> y = x;
    ExpClamped(y.data(), n);
    for (size_t i = 0; i < n; ++i)
      EXPECT_NEAR(y[i], std::exp(x[i]), 1e-6 * std::exp(x[i])) << "length " << n << " at " << i;
  }
}

TEST(KernelsTest, ExpClampsWildInputsAndKeepsNaN) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {kInf, -kInf, 1e9f, -1e9f, std::nanf(""), 0.0f};
  ExpClamped(x.data(), x.size());
  EXPECT_NEAR(x[0], std::exp(30.0f), 1e-6 * std::exp(30.0f));
  EXPECT_NEAR(x[1], std::exp(-30.0f), 1e-6 * std::exp(-30.0f));
  EXPECT_NEAR(x[2], std::exp(30.0f), 1e-6 * std::exp(30.0f));
  EXPECT_NEAR(x[3], std::exp(-30.0f), 1e-6 * std::exp(-30.0f));
  EXPECT_TRUE(std::isnan(x[4]));  // the scorer's finite check must still see it
  EXPECT_FLOAT_EQ(x[5], 1.0f);
}

}  // namespace
}  // namespace allot::models::kernels
