// The fast path's kernels; see kernels.h. Compiled with -O3 -fno-trapping-math (CMakeLists.txt).
#include "models/kernels.h"

#include <algorithm>
#include <cstring>

namespace allot::models::kernels {

// Each kernel is cloned for AVX and picked at load time by an ifunc resolver. Under
// ThreadSanitizer the resolver runs, instrumented, during dynamic relocation, before the TSan
// runtime exists, and the process crashes before main: TSan builds keep the default clone only.
#if defined(__SANITIZE_THREAD__)
#define ALLOT_KERNEL
#else
#define ALLOT_KERNEL __attribute__((target_clones("avx", "default")))
#endif

namespace {

// Eight floats as one value: GCC lowers it to one AVX register or two SSE registers.
using Float8 = float __attribute__((vector_size(32)));

inline Float8 Load8(const float* p) {
  Float8 v;
  std::memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}
inline void Store8(float* p, Float8 v) { std::memcpy(p, &v, sizeof v); }

}  // namespace

// a . b over n floats, in eight interleaved partial sums (the cross network's dot products were
// a tenth of the decision as one serial chain of adds).
ALLOT_KERNEL float Dot(const float* __restrict a, const float* __restrict b, int n) {
  Float8 acc = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) acc += Load8(a + i) * Load8(b + i);
  float s = 0;
  for (int k = 0; k < 8; ++k) s += acc[k];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Y[r, :] = b + X[r, 0:n] W^T[0:n, :] for every row r < rows (row strides ldx and out).
// Blocks of four rows by eight outputs are accumulated in registers: each weight load feeds four
// rows and the four independent sums hide the add latency (a row-by-row update reloads and stores
// y for every input and ran at a quarter of this speed). Every sum runs in the same order (bias,
// then inputs 0..n-1) on every path and in both clones, so results are bit-identical; the AVX
// clone (no FMA contraction) only widens the vectors.
ALLOT_KERNEL void MatMulRows(const float* __restrict wt, const float* __restrict b, int n, int out,
                             const float* __restrict x, int ldx, int rows, float* __restrict y) {
  const int out_blocked = out - out % 8;
  const int ldw = PaddedWidth(out);
  const auto w_at = [&](int i, int o) { return wt + static_cast<size_t>(i) * ldw + o; };
  const auto x_row = [&](int r) { return x + static_cast<size_t>(r) * ldx; };
  const auto y_row = [&](int r) { return y + static_cast<size_t>(r) * out; };
  int r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float *x0 = x_row(r), *x1 = x_row(r + 1), *x2 = x_row(r + 2), *x3 = x_row(r + 3);
    for (int o = 0; o < out_blocked; o += 8) {
      Float8 a0 = Load8(b + o), a1 = a0, a2 = a0, a3 = a0;
      for (int i = 0; i < n; ++i) {
        const Float8 w = Load8(w_at(i, o));
        a0 += x0[i] * w;
        a1 += x1[i] * w;
        a2 += x2[i] * w;
        a3 += x3[i] * w;
      }
      Store8(y_row(r) + o, a0);
      Store8(y_row(r + 1) + o, a1);
      Store8(y_row(r + 2) + o, a2);
      Store8(y_row(r + 3) + o, a3);
    }
  }
  // Rows left over (a single row, as a two-tower product layer runs): four blocks of outputs at
  // once instead, so that four independent sums again hide the add latency.
  const int out_quads = out_blocked - out_blocked % 32;
  for (; r < rows; ++r) {
    const float* xr = x_row(r);
    for (int o = 0; o < out_quads; o += 32) {
      Float8 a0 = Load8(b + o), a1 = Load8(b + o + 8), a2 = Load8(b + o + 16),
             a3 = Load8(b + o + 24);
      for (int i = 0; i < n; ++i) {
        const float* w = w_at(i, o);
        a0 += xr[i] * Load8(w);
        a1 += xr[i] * Load8(w + 8);
        a2 += xr[i] * Load8(w + 16);
        a3 += xr[i] * Load8(w + 24);
      }
      Store8(y_row(r) + o, a0);
      Store8(y_row(r) + o + 8, a1);
      Store8(y_row(r) + o + 16, a2);
      Store8(y_row(r) + o + 24, a3);
    }
    for (int o = out_quads; o < out_blocked; o += 8) {
      Float8 a = Load8(b + o);
      for (int i = 0; i < n; ++i) a += xr[i] * Load8(w_at(i, o));
      Store8(y_row(r) + o, a);
    }
  }
  // Outputs past the last full block of eight: one vector over the zero-padded block, of which
  // only the real outputs are stored. As scalars these were serial chains of n dependent adds,
  // a fifth of a recall decision for the ten such outputs of the default bundle.
  if (out_blocked == out) return;
  for (r = 0; r < rows; ++r) {
    const float* xr = x_row(r);
    Float8 a = Load8(b + out_blocked);
    for (int i = 0; i < n; ++i) a += xr[i] * Load8(w_at(i, out_blocked));
    float lanes[8];
    Store8(lanes, a);
    std::memcpy(y_row(r) + out_blocked, lanes,
                sizeof(float) * static_cast<size_t>(out - out_blocked));
  }
}

void Relu(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = std::max(0.0f, x[i]);
}

// tanh by Lambert's continued fraction (abs. error < 2e-7 on [-4.97, 4.97], clamped beyond),
// applied to whole arrays: the GRU evaluates thousands of gates per request, and std::tanh, or
// this formula one branchy scalar at a time, dominated the decision. Selects instead of branches
// let the compiler vectorise the loop.
namespace {

inline void TanhInPlace(float* __restrict v, int n) {
  for (int i = 0; i < n; ++i) {
    float x = v[i];
    x = x < -4.97f ? -4.97f : x;
    x = x > 4.97f ? 4.97f : x;
    const float x2 = x * x;
    const float p = x * (135135.0f + x2 * (17325.0f + x2 * (378.0f + x2)));
    const float q = 135135.0f + x2 * (62370.0f + x2 * (3150.0f + x2 * 28.0f));
    float t = p / q;
    t = t < -1.0f ? -1.0f : t;
    v[i] = t > 1.0f ? 1.0f : t;
  }
}

// sigmoid(x) = (tanh(x / 2) + 1) / 2.
inline void SigmoidInPlace(float* __restrict v, int n) {
  for (int i = 0; i < n; ++i) v[i] *= 0.5f;
  TanhInPlace(v, n);
  for (int i = 0; i < n; ++i) v[i] = 0.5f * v[i] + 0.5f;
}

}  // namespace

// One GRU step (torch gate order r, z, n): gi and gh are the input and hidden pre-activations
// [3H], gates is scratch [3H]. h2 = (1 - z) * n + z * h. Cloned for AVX like MatMulRows.
ALLOT_KERNEL void GruStep(const float* __restrict gi, const float* __restrict gh,
                          const float* __restrict h, int H, float* __restrict gates,
                          float* __restrict h2) {
  for (int i = 0; i < 2 * H; ++i) gates[i] = gi[i] + gh[i];
  SigmoidInPlace(gates, 2 * H);  // r, z
  float* __restrict n = gates + 2 * H;
  for (int i = 0; i < H; ++i) n[i] = gi[2 * H + i] + gates[i] * gh[2 * H + i];
  TanhInPlace(n, H);
  for (int i = 0; i < H; ++i) h2[i] = n[i] + gates[H + i] * (h[i] - n[i]);
}

}  // namespace allot::models::kernels
