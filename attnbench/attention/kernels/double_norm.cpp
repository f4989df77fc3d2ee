// Two LayerNorms in a row, y = LN2(LN1(x)) over the channels of each token, forward and backward in one pass
// per token each, reading the tokens from several tensors: MANO normalises its tokens twice before the qkv
// projection (the reference's `norm`, then its attention's `norm`), and on the native path the tokens are those of
// every level of the V-cycle. As aten operators that was a concatenation of the levels and two layer norms, each
// re-reading what the one before wrote (on the accuracy suites' 8x8 token grids the launches cost, on 64²-256²
// grids the memory traffic).
// Registered as attnbench_mano::double_norm and attnbench_mano::double_norm_backward; autograd is attached in
// kernels/__init__.py.
//
// Layout: parts xs[i] [B, n_i, C] (contiguous, one batch size B); the output y [B, T, C] with T = Σ n_i holds, per
// entry b, the tokens of xs[0] then xs[1] ... (their concatenation along dim 1). The backward's grad_x is laid out
// as y; the caller splits it back into the parts.
//
// Forward, per token (C channels, biased variance as torch's layer_norm):
//   x̂1 = (x - μ1) · r1,  y1 = γ1 x̂1 + β1,  x̂2 = (y1 - μ2) · r2,  y = γ2 x̂2 + β2,  r = 1 / sqrt(var + eps)
// saving stats [B·T, 4] = (μ1, r1, μ2, r2). Backward, per token, the layer-norm gradient twice:
//   dx̂2 = γ2 dy,  dy1 = r2 (dx̂2 - mean(dx̂2) - x̂2 mean(dx̂2 x̂2)),  dx̂1 = γ1 dy1,
//   dx = r1 (dx̂1 - mean(dx̂1) - x̂1 mean(dx̂1 x̂1)),
// and the affine parameters' gradients summed over tokens: dγ2 = Σ dy x̂2, dβ2 = Σ dy, dγ1 = Σ dy1 x̂1, dβ1 = Σ dy1.
// Those sums run over fixed blocks of tokens, one task per block, then over the blocks in order, so the result is
// the same on any number of threads.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t kBlock = 256;  // tokens per task (and per partial sum of the parameter gradients)

// The parts' shared sizes, checked: B entries, C channels, T tokens per entry in all.
struct Sizes {
  int64_t B, C, T;
};

Sizes check(at::TensorList xs, std::initializer_list<const at::Tensor*> params) {
  TORCH_CHECK(!xs.empty(), "mano double_norm: xs must hold at least one [B, n, C] tensor");
  const int64_t B = xs[0].dim() == 3 ? xs[0].size(0) : -1, C = xs[0].dim() == 3 ? xs[0].size(2) : -1;
  int64_t T = 0;
  for (const at::Tensor& x : xs) {
    TORCH_CHECK(x.dim() == 3 && x.size(0) == B && x.size(2) == C && x.is_contiguous() && x.device().is_cpu() &&
                    x.scalar_type() == xs[0].scalar_type(),
                "mano double_norm: every part of xs must be a contiguous [B, n, C] CPU tensor of one dtype with "
                "B = ", B, " and C = ", C, ", got ", x.sizes());
    T += x.size(1);
  }
  for (const at::Tensor* p : params)
    TORCH_CHECK(p->dim() == 1 && p->size(0) == C && p->is_contiguous() && p->scalar_type() == xs[0].scalar_type(),
                "mano double_norm: each weight and bias must be a contiguous [C = ", C, "] tensor of x's dtype");
  return {B, C, T};
}

// Row t of the output (t in [0, B·T)) comes from rows[t]: the parts' rows in the output's order.
template <typename T>
std::vector<const T*> row_sources(at::TensorList xs, const Sizes& n) {
  std::vector<const T*> rows;
  rows.reserve(n.B * n.T);
  for (int64_t b = 0; b < n.B; ++b)
    for (const at::Tensor& x : xs) {
      const T* part = x.const_data_ptr<T>() + b * x.size(1) * n.C;
      for (int64_t i = 0; i < x.size(1); ++i) rows.push_back(part + i * n.C);
    }
  return rows;
}

// mean and 1 / sqrt(variance + eps) of a row of C values (two passes: the mean, then the squared deviations).
template <typename T>
inline void moments(const T* x, int64_t C, double eps, T& mean, T& rstd) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < C; ++c) sum += x[c];
  mean = sum / T(C);
  T var = 0;
#pragma omp simd reduction(+ : var)
  for (int64_t c = 0; c < C; ++c) var += (x[c] - mean) * (x[c] - mean);
  rstd = T(1) / std::sqrt(var / T(C) + T(eps));
}

// Calls f(CC) with CC the channel count as a compile-time constant for the common widths (each row's loops then
// unroll and a row's intermediates stay in registers), or CC = 0 for any other C, read at run time.
template <typename F>
void with_width(int64_t C, F&& f) {
  if (C == 64) f(std::integral_constant<int64_t, 64>{});
  else if (C == 32) f(std::integral_constant<int64_t, 32>{});
  else if (C == 128) f(std::integral_constant<int64_t, 128>{});
  else f(std::integral_constant<int64_t, 0>{});
}

template <typename T, int64_t CC>
void forward_rows(const std::vector<const T*>& rows, const T* g1, const T* be1, const T* g2, const T* be2,
                  double eps1, double eps2, int64_t C_, T* ys, T* st) {
  const int64_t C = CC > 0 ? CC : C_, N = int64_t(rows.size());
  at::parallel_for(0, N, kBlock, [&](int64_t begin, int64_t end) {
    std::vector<T> buffer(CC > 0 ? 0 : C);
    T local[CC > 0 ? CC : 1];
    T* y1 = CC > 0 ? local : buffer.data();
    for (int64_t t = begin; t < end; ++t) {
      const T* row = rows[t];
      T* s = st + t * 4;
      moments(row, C, eps1, s[0], s[1]);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) y1[c] = (row[c] - s[0]) * s[1] * g1[c] + be1[c];
      moments(y1, C, eps2, s[2], s[3]);
      T* out = ys + t * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) out[c] = (y1[c] - s[2]) * s[3] * g2[c] + be2[c];
    }
  });
}

// parts: [blocks, 4, C] partial sums (dγ1, dβ1, dγ2, dβ2) per block of kBlock tokens, zeroed by the caller.
template <typename T, int64_t CC>
void backward_blocks(const std::vector<const T*>& rows, const T* st, const T* dys, const T* g1, const T* be1,
                     const T* g2, int64_t C_, T* dxs, T* parts) {
  const int64_t C = CC > 0 ? CC : C_, N = int64_t(rows.size()), blocks = (N + kBlock - 1) / kBlock;
  at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
    std::vector<T> buffer(CC > 0 ? 0 : 4 * C);
    T local[CC > 0 ? 4 * CC : 1];
    T* xh1 = CC > 0 ? local : buffer.data();
    T *xh2 = xh1 + C, *dy1 = xh2 + C, *dxh = dy1 + C;
    for (int64_t block = first; block < last; ++block) {
      T* dg1 = parts + block * 4 * C;
      T *db1 = dg1 + C, *dg2 = db1 + C, *db2 = dg2 + C;
      for (int64_t t = block * kBlock; t < std::min(N, (block + 1) * kBlock); ++t) {
        const T* row = rows[t];
        const T* dy = dys + t * C;
        const T* s = st + t * 4;
        // Recompute x̂1 and x̂2; the second layer's input gradient, then the first's.
        T sum = 0, dot = 0;
#pragma omp simd reduction(+ : sum, dot)
        for (int64_t c = 0; c < C; ++c) {
          xh1[c] = (row[c] - s[0]) * s[1];
          xh2[c] = (xh1[c] * g1[c] + be1[c] - s[2]) * s[3];
          dxh[c] = dy[c] * g2[c];
          dg2[c] += dy[c] * xh2[c];
          db2[c] += dy[c];
          sum += dxh[c];
          dot += dxh[c] * xh2[c];
        }
        sum /= T(C), dot /= T(C);
        T sum1 = 0, dot1 = 0;
#pragma omp simd reduction(+ : sum1, dot1)
        for (int64_t c = 0; c < C; ++c) {
          dy1[c] = s[3] * (dxh[c] - sum - xh2[c] * dot);
          dg1[c] += dy1[c] * xh1[c];
          db1[c] += dy1[c];
          const T d = dy1[c] * g1[c];
          sum1 += d;
          dot1 += d * xh1[c];
        }
        sum1 /= T(C), dot1 /= T(C);
        T* dx = dxs + t * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) dx[c] = s[1] * (dy1[c] * g1[c] - sum1 - xh1[c] * dot1);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> double_norm_forward(at::TensorList xs, const at::Tensor& w1, const at::Tensor& b1,
                                                       const at::Tensor& w2, const at::Tensor& b2, double eps1,
                                                       double eps2) {
  const Sizes n = check(xs, {&w1, &b1, &w2, &b2});
  auto y = at::empty({n.B, n.T, n.C}, xs[0].options());
  auto stats = at::empty({n.B * n.T, 4}, xs[0].options());
  AT_DISPATCH_FLOATING_TYPES(xs[0].scalar_type(), "mano_double_norm", [&] {
    const auto rows = row_sources<scalar_t>(xs, n);
    with_width(n.C, [&](auto width) {
      forward_rows<scalar_t, decltype(width)::value>(
          rows, w1.const_data_ptr<scalar_t>(), b1.const_data_ptr<scalar_t>(), w2.const_data_ptr<scalar_t>(),
          b2.const_data_ptr<scalar_t>(), eps1, eps2, n.C, y.mutable_data_ptr<scalar_t>(),
          stats.mutable_data_ptr<scalar_t>());
    });
  });
  return {y, stats};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> double_norm_backward(
    const at::Tensor& grad_y_, at::TensorList xs, const at::Tensor& stats, const at::Tensor& w1,
    const at::Tensor& b1, const at::Tensor& w2) {
  const Sizes n = check(xs, {&w1, &b1, &w2});
  TORCH_CHECK(stats.sizes() == at::IntArrayRef({n.B * n.T, 4}) && stats.is_contiguous(),
              "mano double_norm: stats must be a contiguous [B·T, 4] tensor");
  TORCH_CHECK(grad_y_.sizes() == at::IntArrayRef({n.B, n.T, n.C}),
              "mano double_norm: grad must be [B, T, C] like the output, got ", grad_y_.sizes());
  const auto grad_y = grad_y_.contiguous();
  auto grad_x = at::empty({n.B, n.T, n.C}, xs[0].options());
  const int64_t blocks = (n.B * n.T + kBlock - 1) / kBlock;
  auto partial = at::zeros({blocks, 4, n.C}, xs[0].options());  // per block: dγ1, dβ1, dγ2, dβ2
  auto sums = at::zeros({4, n.C}, xs[0].options());              // over the blocks in order
  AT_DISPATCH_FLOATING_TYPES(xs[0].scalar_type(), "mano_double_norm_backward", [&] {
    const auto rows = row_sources<scalar_t>(xs, n);
    with_width(n.C, [&](auto width) {
      backward_blocks<scalar_t, decltype(width)::value>(
          rows, stats.const_data_ptr<scalar_t>(), grad_y.const_data_ptr<scalar_t>(), w1.const_data_ptr<scalar_t>(),
          b1.const_data_ptr<scalar_t>(), w2.const_data_ptr<scalar_t>(), n.C, grad_x.mutable_data_ptr<scalar_t>(),
          partial.mutable_data_ptr<scalar_t>());
    });
    const scalar_t* parts = partial.const_data_ptr<scalar_t>();
    scalar_t* out = sums.mutable_data_ptr<scalar_t>();
    for (int64_t block = 0; block < blocks; ++block)
      for (int64_t i = 0; i < 4 * n.C; ++i) out[i] += parts[block * 4 * n.C + i];
  });
  return {grad_x, sums[0], sums[1], sums[2], sums[3]};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(attnbench_mano, m) {
  m.def("double_norm(Tensor[] xs, Tensor w1, Tensor b1, Tensor w2, Tensor b2, float eps1, float eps2) -> "
        "(Tensor, Tensor)");
  m.def("double_norm_backward(Tensor grad_y, Tensor[] xs, Tensor stats, Tensor w1, Tensor b1, Tensor w2) -> "
        "(Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(attnbench_mano, CPU, m) {
  m.impl("double_norm", &double_norm_forward);
  m.impl("double_norm_backward", &double_norm_backward);
}
