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
// Sixteen: one AVX-512 register (the products' widest form).
using Float16 = float __attribute__((vector_size(64)));

template <class V>
inline V Load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}
template <class V>
inline void Store(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}
inline Float8 Load8(const float* p) { return Load<Float8>(p); }

// Stores the block of outputs from o, or the ones below out of a padded last block.
template <class V>
inline void StoreOutputs(V v, int o, int out, float* y) {
  constexpr int kLanes = sizeof(V) / sizeof(float);
  if (o + kLanes <= out) {
    Store(y + o, v);
    return;
  }
  float lanes[kLanes];
  Store(lanes, v);
  std::memcpy(y + o, lanes, sizeof(float) * static_cast<size_t>(out - o));
}

// Every output of a product is summed the same way on every path, at every vector width and
// whichever rows it is computed with, so that results are bit-identical: the bias and the
// even-numbered inputs in order in one sum, the odd-numbered ones in order in another, then the
// two added. Two sums per output halve the chain of dependent adds that a layer of few outputs
// (32 of them: two or four vectors) waited on.
// y[o, o + W K) = the product's outputs for row x, K blocks of W outputs at a time from o while a
// pass starts below out (the weights and bias are zero-padded to whole blocks, kernels.h);
// returns where it stopped.
template <class V, int K>
__attribute__((always_inline)) inline int RowBlocks(const float* __restrict wt, int ldw,
                                                    const float* __restrict b, int n,
                                                    const float* __restrict x, int o, int out,
                                                    float* __restrict y) {
  constexpr int W = sizeof(V) / sizeof(float);
  for (; o + W * (K - 1) < out; o += W * K) {
    V even[K], odd[K];
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) {
      even[k] = Load<V>(b + o + W * k);
      odd[k] = V{};
    }
    int i = 0;
    for (; i + 2 <= n; i += 2) {
      const float* w = wt + static_cast<size_t>(i) * ldw + o;
#pragma GCC unroll 16
      for (int k = 0; k < K; ++k) {
        even[k] += x[i] * Load<V>(w + W * k);
        odd[k] += x[i + 1] * Load<V>(w + ldw + W * k);
      }
    }
    if (i < n) {
      const float* w = wt + static_cast<size_t>(i) * ldw + o;
#pragma GCC unroll 16
      for (int k = 0; k < K; ++k) even[k] += x[i] * Load<V>(w + W * k);
    }
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) StoreOutputs(even[k] + odd[k], o + W * k, out, y);
  }
  return o;
}

// The product over rows of W-wide vectors: blocks of four rows by one vector of outputs, then the
// rows left over one at a time with up to kMaxBlocks vectors of outputs at once. See MatMulRows.
template <class V, int kMaxBlocks>
__attribute__((always_inline)) inline void MatMulRowsOf(const float* __restrict wt,
                                                        const float* __restrict b, int n, int out,
                                                        const float* __restrict x, int ldx,
                                                        int rows, float* __restrict y) {
  constexpr int W = sizeof(V) / sizeof(float);
  const int ldw = PaddedWidth(out);
  const auto x_row = [&](int r) { return x + static_cast<size_t>(r) * ldx; };
  const auto y_row = [&](int r) { return y + static_cast<size_t>(r) * out; };
  const int grouped = rows - rows % 4;
  for (int r = 0; r < grouped; r += 4) {
    const float* xs[4] = {x_row(r), x_row(r + 1), x_row(r + 2), x_row(r + 3)};
    for (int o = 0; o < out; o += W) {
      V even[4], odd[4];
#pragma GCC unroll 16
      for (int k = 0; k < 4; ++k) {
        even[k] = Load<V>(b + o);
        odd[k] = V{};
      }
      int i = 0;
      for (; i + 2 <= n; i += 2) {
        const float* w = wt + static_cast<size_t>(i) * ldw + o;
        const V w0 = Load<V>(w), w1 = Load<V>(w + ldw);
#pragma GCC unroll 16
        for (int k = 0; k < 4; ++k) {
          even[k] += xs[k][i] * w0;
          odd[k] += xs[k][i + 1] * w1;
        }
      }
      if (i < n) {
        const V w0 = Load<V>(wt + static_cast<size_t>(i) * ldw + o);
#pragma GCC unroll 16
        for (int k = 0; k < 4; ++k) even[k] += xs[k][i] * w0;
      }
#pragma GCC unroll 16
      for (int k = 0; k < 4; ++k) StoreOutputs(even[k] + odd[k], o, out, y_row(r + k));
    }
  }
  for (int r = grouped; r < rows; ++r) {
    int o = 0;
    if constexpr (kMaxBlocks >= 8) o = RowBlocks<V, 8>(wt, ldw, b, n, x_row(r), o, out, y_row(r));
    o = RowBlocks<V, 4>(wt, ldw, b, n, x_row(r), o, out, y_row(r));
    o = RowBlocks<V, 2>(wt, ldw, b, n, x_row(r), o, out, y_row(r));
    RowBlocks<V, 1>(wt, ldw, b, n, x_row(r), o, out, y_row(r));
  }
}

#if defined(__x86_64__)
// The forms of the product, widest first. AVX-512 has 32 vector registers, room for eight
// blocks' two sums; AVX and SSE have 16, so they take four blocks at a time.
__attribute__((target("avx512f"))) void MatMulRowsAvx512(const float* __restrict wt,
                                                         const float* __restrict b, int n, int out,
                                                         const float* __restrict x, int ldx,
                                                         int rows, float* __restrict y) {
  MatMulRowsOf<Float16, 8>(wt, b, n, out, x, ldx, rows, y);
}
__attribute__((target("avx"))) void MatMulRowsAvx(const float* __restrict wt,
                                                  const float* __restrict b, int n, int out,
                                                  const float* __restrict x, int ldx, int rows,
                                                  float* __restrict y) {
  MatMulRowsOf<Float8, 4>(wt, b, n, out, x, ldx, rows, y);
}
void MatMulRowsSse(const float* __restrict wt, const float* __restrict b, int n, int out,
                   const float* __restrict x, int ldx, int rows, float* __restrict y) {
  MatMulRowsOf<Float8, 4>(wt, b, n, out, x, ldx, rows, y);
}

std::vector<MatMulForm> MatMulForms() {
  __builtin_cpu_init();
  std::vector<MatMulForm> forms;
  if (__builtin_cpu_supports("avx512f")) forms.push_back(MatMulRowsAvx512);
  if (__builtin_cpu_supports("avx")) forms.push_back(MatMulRowsAvx);
  forms.push_back(MatMulRowsSse);
  return forms;
}
#else
void MatMulRowsPortable(const float* __restrict wt, const float* __restrict b, int n, int out,
                        const float* __restrict x, int ldx, int rows, float* __restrict y) {
  MatMulRowsOf<Float8, 4>(wt, b, n, out, x, ldx, rows, y);
}
std::vector<MatMulForm> MatMulForms() { return {MatMulRowsPortable}; }
#endif

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

// Y[r, :] = b + X[r, 0:n] W^T[0:n, :] for every row r < rows (row strides ldx and out), at the
// widest width the CPU runs (one pointer picked at the first call, as ExpClamped does: the
// target_clones resolver crashes ThreadSanitizer builds before main). Four rows at a time share
// each weight load; a single row (every layer of a two-tower bundle) accumulates several blocks
// of outputs at once, so that independent sums hide the add latency. In a microbenchmark, on
// aligned weights: 64 inputs to 32 outputs 42 -> 32-35 ns, 32 inputs to 124 outputs 75 -> 45-47 ns
// (one sum per output over AVX blocks of eight before).
void MatMulRows(const float* __restrict wt, const float* __restrict b, int n, int out,
                const float* __restrict x, int ldx, int rows, float* __restrict y) {
  static const MatMulForm form = MatMulForms().front();
  form(wt, b, n, out, x, ldx, rows, y);
}

std::vector<MatMulForm> MatMulFormsForTesting() { return MatMulForms(); }

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
