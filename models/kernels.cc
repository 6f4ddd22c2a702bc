// The fast path's kernels; see kernels.h. Compiled with -O3 -fno-trapping-math (CMakeLists.txt).
#include "models/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

// glibc's libmvec: expf 4, 8 or 16 lanes per call (SSE, AVX2, AVX-512 ABIs). Declared here
// because <math.h> declares the vector forms only under -ffast-math, which would also let the
// compiler drop the NaN checks the scorers rely on. ALLOT_HAVE_LIBMVEC: CMake found the library.
#if defined(ALLOT_HAVE_LIBMVEC) && defined(__x86_64__)
#include <immintrin.h>
extern "C" __m128 _ZGVbN4v_expf(__m128 x);
extern "C" __m256 _ZGVdN8v_expf(__m256 x);
extern "C" __m512 _ZGVeN16v_expf(__m512 x);
#define ALLOT_LIBMVEC 1
#endif

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

// Stores the block of eight outputs from o, or the ones below out of a padded last block.
inline void StoreOutputs(Float8 v, int o, int out, float* y) {
  if (o + 8 <= out) {
    Store8(y + o, v);
    return;
  }
  float lanes[8];
  Store8(lanes, v);
  std::memcpy(y + o, lanes, sizeof(float) * static_cast<size_t>(out - o));
}

// y[o, o + 8K) = b + x[0:n] W^T[0:n, o, o + 8K) for K blocks of eight outputs at a time, from o
// while a pass starts below out (the weights and bias are zero-padded to whole blocks); returns
// where it stopped. Each block's sum runs in the same order (bias, then inputs 0..n-1) whatever
// K is, so results do not depend on how the blocks were grouped.
template <int K>
__attribute__((always_inline)) inline int RowBlocks(const float* __restrict wt, int ldw,
                                                    const float* __restrict b, int n,
                                                    const float* __restrict x, int o, int out,
                                                    float* __restrict y) {
  for (; o + 8 * (K - 1) < out; o += 8 * K) {
    Float8 acc[K];
    for (int k = 0; k < K; ++k) acc[k] = Load8(b + o + 8 * k);
    for (int i = 0; i < n; ++i) {
      const float* w = wt + static_cast<size_t>(i) * ldw + o;
      for (int k = 0; k < K; ++k) acc[k] += x[i] * Load8(w + 8 * k);
    }
    for (int k = 0; k < K; ++k) StoreOutputs(acc[k], o + 8 * k, out, y);
  }
  return o;
}

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
  const int grouped = rows - rows % 4;
  for (int r = 0; r < grouped; r += 4) {
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
    // Outputs past the last full block of eight: one vector over the zero-padded block, of which
    // only the real outputs are stored. As scalars these were serial chains of n dependent adds,
    // a fifth of a recall decision for the ten such outputs of the default bundle.
    for (int k = 0; k < 4 && out_blocked < out; ++k) {
      const float* xr = x_row(r + k);
      Float8 a = Load8(b + out_blocked);
      for (int i = 0; i < n; ++i) a += xr[i] * Load8(w_at(i, out_blocked));
      StoreOutputs(a, out_blocked, out, y_row(r + k));
    }
  }
  // Rows left over (a single row, as every layer of a two-tower bundle runs): eight blocks of
  // outputs at once, then four, then one, over the zero-padded width, so that independent sums
  // hide the add latency. Blocks run one at a time, or the padded tail block alone, were serial
  // chains that left a 62-output layer as slow as a 124-output one.
  for (int r = grouped; r < rows; ++r) {
    int o = RowBlocks<8>(wt, ldw, b, n, x_row(r), 0, out, y_row(r));
    o = RowBlocks<4>(wt, ldw, b, n, x_row(r), o, out, y_row(r));
    RowBlocks<1>(wt, ldw, b, n, x_row(r), o, out, y_row(r));
  }
}

// A recall decision exponentiates 186 values and costs: one scalar expf each was a fifth of its
// time. The widest vector form the CPU runs takes a fifth of that (192 values: AVX-512 38 ns here,
// AVX2 54, SSE 120, one expf at a time about 180). All are within 2e-7 relative of expf, but not
// bit-identical to each other: machines of different vector widths may disagree in the last bit of
// a value.
namespace {

#ifdef ALLOT_LIBMVEC
// Each form clamps and exponentiates whole vectors, a short tail through a zero-padded copy.
// Both clamps return their second operand on a NaN, so a NaN passes through.
#define ALLOT_EXP_FORM(NAME, TARGET, LANES, VEC, SET1, LOADU, STOREU, MAX, MIN, EXP) \
  __attribute__((target(TARGET))) void NAME(float* x, size_t n) {                    \
    const VEC lo = SET1(-30.0f), hi = SET1(30.0f);                                   \
    float tail[LANES] = {};                                                          \
    for (size_t i = 0; i < n; i += LANES) {                                          \
      const size_t k = std::min<size_t>(LANES, n - i);                               \
      float* p = k == LANES ? x + i : tail;                                          \
      if (k < LANES) std::memcpy(tail, x + i, sizeof(float) * k);                    \
      STOREU(p, EXP(MIN(hi, MAX(lo, LOADU(p)))));                                    \
      if (k < LANES) std::memcpy(x + i, tail, sizeof(float) * k);                    \
    }                                                                                \
  }
ALLOT_EXP_FORM(ExpSse, "sse2", 4, __m128, _mm_set1_ps, _mm_loadu_ps, _mm_storeu_ps, _mm_max_ps,
               _mm_min_ps, _ZGVbN4v_expf)
ALLOT_EXP_FORM(ExpAvx2, "avx2", 8, __m256, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
               _mm256_max_ps, _mm256_min_ps, _ZGVdN8v_expf)
// GCC 12's AVX-512 min and max start from _mm512_undefined_ps, which it then warns about.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
ALLOT_EXP_FORM(ExpAvx512, "avx512f", 16, __m512, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps,
               _mm512_max_ps, _mm512_min_ps, _ZGVeN16v_expf)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#undef ALLOT_EXP_FORM

using ExpForm = void (*)(float*, size_t);
ExpForm WidestExpForm() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return ExpAvx512;
  if (__builtin_cpu_supports("avx2")) return ExpAvx2;
  return ExpSse;
}
#else
void ExpScalar(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = std::exp(std::clamp(x[i], -30.0f, 30.0f));
}
#endif

}  // namespace

void ExpClamped(float* x, size_t n) {
#ifdef ALLOT_LIBMVEC
  static const ExpForm form = WidestExpForm();
  form(x, n);
#else
  ExpScalar(x, n);
#endif
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
