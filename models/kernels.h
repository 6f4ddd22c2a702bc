// The fast path's numeric kernels, kept apart from the scorer's logic (as faiss keeps its
// distance kernels apart from its indexes): dense rows (at the widest of SSE, AVX and AVX-512),
// dot products and the GRU step (cloned for AVX), each picked at load time, with sums in a fixed
// order so every form and every path gives bit-identical results (the fast path must equal the
// LibTorch reference), and the exponential of the per-action values and costs, which glibc's vector
// math computes to within a few ulp (the one result that may differ in its last bit between CPUs).
// No LibTorch here.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace allot::models::kernels {

// a . b over n floats.
float Dot(const float* __restrict a, const float* __restrict b, int n);

// Allocates on a cache line (64 bytes): MatMulRows reads whole rows in vectors of up to 64 bytes,
// and a row that starts off a line makes every load cross two (124 outputs x 32 inputs: 45 ns
// aligned, 74 ns at the 16-byte offset malloc gives).
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p, kAlignment); }
  friend bool operator==(const CacheLineAllocator&, const CacheLineAllocator&) { return true; }
};
// Weights and biases laid out for MatMulRows.
using AlignedFloats = std::vector<float, CacheLineAllocator<float>>;

// The row length of weights and biases laid out for MatMulRows: out rounded up to sixteen (one
// AVX-512 vector).
constexpr int PaddedWidth(int out) { return (out + 15) / 16 * 16; }

// Y[r, :] = b + X[r, 0:n] W^T[0:n, :] for every row r < rows; wt is W transposed, each of its rows
// PaddedWidth(out) floats long (fastest on a cache line: AlignedFloats), and b has PaddedWidth(out)
// entries (padding zeros, so that outputs past the last full block run in a vector too). X rows are
// ldx apart and Y rows out apart; only Y's first out entries per row are written.
void MatMulRows(const float* __restrict wt, const float* __restrict b, int n, int out,
                const float* __restrict x, int ldx, int rows, float* __restrict y);

// Every form of MatMulRows that this CPU runs (AVX-512, AVX, SSE), widest first: for tests, which
// check that they agree bit for bit.
using MatMulForm = void (*)(const float* __restrict, const float* __restrict, int, int,
                            const float* __restrict, int, int, float* __restrict);
std::vector<MatMulForm> MatMulFormsForTesting();

// x = e^x over n floats, each x first clamped to [-30, 30] so that a wild network output cannot
// give inf (a NaN stays NaN, for the caller's finite check). Through glibc's vector math library
// at the widest width the CPU runs where it exists (x86-64), within 2e-7 relative of expf.
void ExpClamped(float* x, size_t n);

// x = max(x, 0) over n floats.
void Relu(float* x, size_t n);

// One GRU step (torch gate order r, z, n): gi and gh are the input and hidden pre-activations
// [3H], gates is scratch [3H]; writes h2 = (1 - z) * n + z * h.
void GruStep(const float* __restrict gi, const float* __restrict gh, const float* __restrict h,
             int H, float* __restrict gates, float* __restrict h2);

}  // namespace allot::models::kernels
