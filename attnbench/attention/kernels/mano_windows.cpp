// MANO's per-level window attention for every level of the V-cycle in one CPU kernel (forward and backward).
//
// Softmax attention inside every k×k window (stride s) of every level, the outputs of the overlapping windows
// averaged per token: the operator W of attnbench/attention/mano.py, registered as the torch operators
// attnbench_mano::windows and attnbench_mano::windows_backward (autograd is attached in kernels/__init__.py).
//
// Layout: qkv [B, T, 3, heads, d], contiguous, the levels' tokens concatenated along T (finest first, each level
// row-major); shapes = [h_0, w_0, h_1, w_1, ...]. Output [B, T, heads, d].
//
// Per query token i of a level, everything it needs is local: its dot products with the keys at the (2k-1)²
// offsets δ that a window containing i can reach, one softmax per window containing i (over that window's k²
// offsets), the per-offset weight W_δ summed over those windows and divided by their count, and the output
// Σ_δ W_δ v_{i+δ}. So no per-window copies and no probability tensor: the backward recomputes the scores (flash
// attention's trade) and saves only qkv. Work per token and head: 2·(2k-1)² dot products or multiply-adds of
// length d forward, about twice that backward.
//
// Parallel over chunks of tokens, all heads of a token together (a token's q, k and v rows are read while in
// cache, which matters on large grids, and a batch of one still splits across threads). The backward runs in two
// passes so that no two tokens write the same memory: the first gives every query its gradient and stores, per
// query and offset, the weight W_δ and the score gradient; the second gathers each key's and value's gradient from
// the queries that reached it.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <cmath>
#include <vector>

namespace {

constexpr int64_t kMaxWindow = 4;  // the largest window compiled (with_geometry): mano.NATIVE_MAX_WINDOW

struct Level {
  int64_t offset, h, w;
};

std::vector<Level> levels_of(const at::Tensor& qkv, at::IntArrayRef shapes, int64_t k, int64_t s) {
  TORCH_CHECK(shapes.size() % 2 == 0 && !shapes.empty(), "mano windows: shapes must be [h0, w0, h1, w1, ...]");
  TORCH_CHECK(k >= 1 && k <= kMaxWindow, "mano windows: window must be in [1, ", kMaxWindow, "], got ", k);
  TORCH_CHECK(s >= 1 && s <= k, "mano windows: stride must be in [1, window], got ", s);
  std::vector<Level> levels;
  int64_t offset = 0;
  for (size_t l = 0; l < shapes.size(); l += 2) {
    const int64_t h = shapes[l], w = shapes[l + 1];
    TORCH_CHECK(h >= k && w >= k && (h - k) % s == 0 && (w - k) % s == 0, "mano windows: level ", l / 2, " (", h,
                "x", w, ") does not admit window ", k, " at stride ", s);
    levels.push_back({offset, h, w});
    offset += h * w;
  }
  TORCH_CHECK(qkv.dim() == 5 && qkv.size(2) == 3 && qkv.size(1) == offset,
              "mano windows: qkv must be [B, T, 3, heads, d] with T = ", offset, " tokens, got ", qkv.sizes());
  TORCH_CHECK(qkv.is_contiguous() && qkv.device().is_cpu(), "mano windows: qkv must be a contiguous CPU tensor");
  return levels;
}

template <typename T>
inline T dot(const T* a, const T* b, int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t c = 0; c < n; ++c) acc += a[c] * b[c];
  return acc;
}

template <typename T>
inline void axpy(T alpha, const T* x, T* y, int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) y[c] += alpha * x[c];
}

// One query token's windows, for window K (a template parameter, so the loops over a window's keys and over
// the (2K-1)² offsets unroll): the offsets its windows reach, their scores and softmaxes, the averaged weights.
template <typename T, int64_t K>
struct Query {
  static constexpr int64_t D = 2 * K - 1, kOffsets = D * D;
  int64_t s;
  int64_t roles = 0;           // windows containing the token
  int64_t corner[K * K];       // each window's first key as an offset index (its top-left minus the token)
  bool reach[kOffsets];        // offsets some window of the token contains
  T score[kOffsets];           // scale · q · k_{i+δ}
  T prob[K * K][K * K];        // per window, softmax over its K² keys (row-major inside the window)
  T weight[kOffsets];          // Σ over windows of prob, divided by the window count

  // Windows of a level h × w containing token (y, x): top-left (y - ay, x - ax) for 0 <= ay, ax < K on the
  // window grid (multiples of s, at most h - K / w - K).
  inline void find(int64_t y, int64_t x, int64_t h, int64_t w) {
    roles = 0;
    std::fill(reach, reach + kOffsets, false);
    for (int64_t ay = 0; ay < K; ++ay) {
      const int64_t ty = y - ay;
      if (ty < 0 || ty > h - K || ty % s) continue;
      for (int64_t ax = 0; ax < K; ++ax) {
        const int64_t tx = x - ax;
        if (tx < 0 || tx > w - K || tx % s) continue;
        const int64_t first = (K - 1 - ay) * D + (K - 1 - ax);
        corner[roles++] = first;
        for (int64_t u = 0; u < K; ++u)
          for (int64_t v = 0; v < K; ++v) reach[first + u * D + v] = true;
      }
    }
  }

  // Exponentials are shared between a token's windows (they overlap): one per reached offset against the largest
  // reached score, instead of one per (window, key). A window whose own largest score is far below that maximum
  // (its exponentials could underflow) takes its own.
  inline void softmaxes() {
    constexpr T kSafeGap = sizeof(T) == 4 ? T(40) : T(300);  // exp(-gap) stays a normal number with full precision
    T top = -INFINITY;
    for (int64_t o = 0; o < kOffsets; ++o)
      if (reach[o]) top = std::max(top, score[o]);
    T shared[kOffsets];
    for (int64_t o = 0; o < kOffsets; ++o) shared[o] = reach[o] ? std::exp(score[o] - top) : T(0);
    std::fill(weight, weight + kOffsets, T(0));
    for (int64_t r = 0; r < roles; ++r) {
      const int64_t first = corner[r];
      T m = -INFINITY;
      for (int64_t u = 0; u < K; ++u)
        for (int64_t v = 0; v < K; ++v) m = std::max(m, score[first + u * D + v]);
      const bool own = top - m > kSafeGap;
      T sum = 0;
      for (int64_t u = 0; u < K; ++u)
        for (int64_t v = 0; v < K; ++v) {
          const int64_t o = first + u * D + v;
          sum += (prob[r][u * K + v] = own ? std::exp(score[o] - m) : shared[o]);
        }
      const T inv = T(1) / sum;
      for (int64_t u = 0; u < K; ++u)
        for (int64_t v = 0; v < K; ++v) weight[first + u * D + v] += (prob[r][u * K + v] *= inv);
    }
    const T inv_count = T(1) / T(roles);  // every token lies in >= 1 window: levels_of checked the window grid
    for (int64_t o = 0; o < kOffsets; ++o) weight[o] *= inv_count;
  }
};

// The token index of offset o from token i on a level of width w.
template <int64_t K>
inline int64_t neighbour_of(int64_t i, int64_t o, int64_t w) {
  constexpr int64_t D = 2 * K - 1;
  return i + (o / D - K + 1) * w + (o % D - K + 1);
}

// Calls f(b, level, y, x, i) for the tokens [begin, end) of the B·T tokens (b = entry, i = token in the entry).
template <typename F>
inline void for_tokens(const std::vector<Level>& levels, int64_t T_, int64_t begin, int64_t end, F&& f) {
  int64_t b = begin / T_, i = begin % T_;
  size_t l = 0;
  while (i >= levels[l].offset + levels[l].h * levels[l].w) ++l;
  for (int64_t n = begin; n < end; ++n) {
    const Level& level = levels[l];
    const int64_t local = i - level.offset;
    f(b, level, local / level.w, local % level.w, i);
    if (++i == T_) i = 0, ++b, l = 0;
    else if (i == level.offset + level.h * level.w) ++l;
  }
}

// Memory of one entry's tokens: qkv rows of token_stride elements (q at 0, k at part, v at 2·part, head h at
// h·d inside each); output and its gradient rows of part elements; the backward's per-query scratch rows of
// heads·(2k-1)² elements.
struct Geometry {
  int64_t T, heads, d, token_stride, part, offsets;
};

Geometry geometry_of(const at::Tensor& qkv, int64_t window) {  // qkv checked by levels_of
  const int64_t heads = qkv.size(3), d = qkv.size(4);
  return {qkv.size(1), heads, d, 3 * heads * d, heads * d, (2 * window - 1) * (2 * window - 1)};
}

constexpr int64_t kGrain = 64;  // tokens per parallel task at least (each costs heads·(2k-1)² dot products)

template <typename T, int64_t K, int64_t DH>
void forward_kernel(const std::vector<Level>& levels, const Geometry& g, int64_t B, int64_t s, T scale, const T* qkv,
                    T* out) {
  const int64_t d = DH ? DH : g.d;
  at::parallel_for(0, B * g.T, kGrain, [&](int64_t begin, int64_t end) {
    Query<T, K> query;
    query.s = s;
    for_tokens(levels, g.T, begin, end, [&](int64_t b, const Level& level, int64_t y, int64_t x, int64_t i) {
      query.find(y, x, level.h, level.w);
      const T* entry = qkv + b * g.T * g.token_stride;
      for (int64_t h = 0; h < g.heads; ++h) {
        const T* q = entry + i * g.token_stride + h * d;
        for (int64_t o = 0; o < query.kOffsets; ++o)
          if (query.reach[o])
            query.score[o] = scale * dot(q, entry + neighbour_of<K>(i, o, level.w) * g.token_stride + g.part + h * d, d);
        query.softmaxes();
        T* o_ptr = out + (b * g.T + i) * g.part + h * d;
        std::fill(o_ptr, o_ptr + d, T(0));
        for (int64_t o = 0; o < query.kOffsets; ++o)
          if (query.reach[o])
            axpy(query.weight[o], entry + neighbour_of<K>(i, o, level.w) * g.token_stride + 2 * g.part + h * d, o_ptr, d);
      }
    });
  });
}

template <typename T, int64_t K, int64_t DH>
void backward_kernel(const std::vector<Level>& levels, const Geometry& g, int64_t B, int64_t s, T scale,
                     const T* qkv, const T* grad_out, T* grad, T* weights, T* score_grads) {
  const int64_t d = DH ? DH : g.d;
  constexpr int64_t D = 2 * K - 1, kOffsets = D * D;
  // Pass 1, per query: recompute the windows' softmaxes; out_i = Σ_δ W_δ v_{i+δ} gives dW_δ = g_i · v_{i+δ};
  // W_δ is the windows' probabilities summed over their count, and each window's softmax backward gives the
  // score gradients; score_δ = scale · q_i · k_{i+δ} gives dq_i. W_δ and scale · dscore_δ are kept per (i, head, δ),
  // zero where no window of i reaches δ.
  at::parallel_for(0, B * g.T, kGrain, [&](int64_t begin, int64_t end) {
    Query<T, K> query;
    query.s = s;
    T grad_weight[kOffsets];
    for_tokens(levels, g.T, begin, end, [&](int64_t b, const Level& level, int64_t y, int64_t x, int64_t i) {
      query.find(y, x, level.h, level.w);
      const T* entry = qkv + b * g.T * g.token_stride;
      const T inv_count = T(1) / T(query.roles);
      for (int64_t h = 0; h < g.heads; ++h) {
        const T* q = entry + i * g.token_stride + h * d;
        const T* go = grad_out + (b * g.T + i) * g.part + h * d;
        for (int64_t o = 0; o < kOffsets; ++o) {
          if (!query.reach[o]) continue;
          const T* row = entry + neighbour_of<K>(i, o, level.w) * g.token_stride + h * d;
          query.score[o] = scale * dot(q, row + g.part, d);
          grad_weight[o] = inv_count * dot(go, row + 2 * g.part, d);
        }
        query.softmaxes();
        T* w_row = weights + ((b * g.T + i) * g.heads + h) * kOffsets;
        T* gs_row = score_grads + ((b * g.T + i) * g.heads + h) * kOffsets;
        for (int64_t o = 0; o < kOffsets; ++o) w_row[o] = query.weight[o], gs_row[o] = T(0);
        for (int64_t r = 0; r < query.roles; ++r) {  // dscore = p (dp - Σ p dp), per window
          const int64_t first = query.corner[r];
          T inner = 0;
          for (int64_t u = 0; u < K; ++u)
            for (int64_t v = 0; v < K; ++v) inner += query.prob[r][u * K + v] * grad_weight[first + u * D + v];
          for (int64_t u = 0; u < K; ++u)
            for (int64_t v = 0; v < K; ++v) {
              const int64_t o = first + u * D + v;
              gs_row[o] += scale * query.prob[r][u * K + v] * (grad_weight[o] - inner);
            }
        }
        T* grad_q = grad + (b * g.T + i) * g.token_stride + h * d;
        std::fill(grad_q, grad_q + d, T(0));
        for (int64_t o = 0; o < kOffsets; ++o)
          if (query.reach[o]) axpy(gs_row[o], entry + neighbour_of<K>(i, o, level.w) * g.token_stride + g.part + h * d, grad_q, d);
      }
    });
  });
  // Pass 2, per key / value token j: dk_j = Σ_δ (scale · dscore_δ of query j-δ) q_{j-δ}, dv_j = Σ_δ W_δ(j-δ) g_{j-δ},
  // over the queries j-δ of j's level (the stored zeros cover the offsets a query did not reach).
  at::parallel_for(0, B * g.T, kGrain, [&](int64_t begin, int64_t end) {
    for_tokens(levels, g.T, begin, end, [&](int64_t b, const Level& level, int64_t y, int64_t x, int64_t j) {
      const T* entry = qkv + b * g.T * g.token_stride;
      T* grad_row = grad + (b * g.T + j) * g.token_stride;
      std::fill(grad_row + g.part, grad_row + 3 * g.part, T(0));
      for (int64_t o = 0; o < kOffsets; ++o) {
        const int64_t qy = y - (o / D - K + 1), qx = x - (o % D - K + 1);  // the query that reaches j at offset o
        if (qy < 0 || qy >= level.h || qx < 0 || qx >= level.w) continue;
        const int64_t i = level.offset + qy * level.w + qx;
        const T* w_row = weights + (b * g.T + i) * g.heads * kOffsets + o;
        const T* gs_row = score_grads + (b * g.T + i) * g.heads * kOffsets + o;
        for (int64_t h = 0; h < g.heads; ++h) {
          axpy(gs_row[h * kOffsets], entry + i * g.token_stride + h * d, grad_row + g.part + h * d, d);
          axpy(w_row[h * kOffsets], grad_out + (b * g.T + i) * g.part + h * d, grad_row + 2 * g.part + h * d, d);
        }
      }
    });
  });
}

// Calls f(K, DH) with compile-time constants for the runtime window k (1..kMaxWindow) and head width d: DH = d
// for the common head widths (the dot products and multiply-adds then unroll to a few vector instructions), else
// 0 (d read at run time).
template <typename F>
void with_geometry(int64_t k, int64_t d, F&& f) {
  auto with_d = [&](auto K) {
    switch (d) {
      case 16: f(K, std::integral_constant<int64_t, 16>{}); break;
      case 32: f(K, std::integral_constant<int64_t, 32>{}); break;
      default: f(K, std::integral_constant<int64_t, 0>{});
    }
  };
  switch (k) {
    case 1: with_d(std::integral_constant<int64_t, 1>{}); break;
    case 2: with_d(std::integral_constant<int64_t, 2>{}); break;
    case 3: with_d(std::integral_constant<int64_t, 3>{}); break;
    case 4: with_d(std::integral_constant<int64_t, 4>{}); break;
    default: TORCH_CHECK(false, "mano windows: window must be in [1, ", kMaxWindow, "], got ", k);
  }
}

at::Tensor windows_forward(const at::Tensor& qkv, at::IntArrayRef shapes, int64_t window, int64_t stride,
                           double scale) {
  const auto levels = levels_of(qkv, shapes, window, stride);
  const Geometry g = geometry_of(qkv, window);
  const int64_t B = qkv.size(0), d = g.d;
  auto out = at::empty({B, g.T, g.heads, d}, qkv.options());
  AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "mano_windows_forward", [&] {
    with_geometry(window, d, [&](auto k, auto dh) {
      forward_kernel<scalar_t, decltype(k)::value, decltype(dh)::value>(
          levels, g, B, stride, scalar_t(scale), qkv.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>());
    });
  });
  return out;
}

at::Tensor windows_backward(const at::Tensor& grad_out_, const at::Tensor& qkv, at::IntArrayRef shapes,
                            int64_t window, int64_t stride, double scale) {
  const auto levels = levels_of(qkv, shapes, window, stride);
  const Geometry g = geometry_of(qkv, window);
  const int64_t B = qkv.size(0), d = g.d;
  TORCH_CHECK(grad_out_.sizes() == at::IntArrayRef({B, g.T, g.heads, d}),
              "mano windows: grad_out must be [B, T, heads, d], got ", grad_out_.sizes());
  const auto grad_out = grad_out_.contiguous();
  auto grad = at::empty_like(qkv);  // every element is written: q rows in pass 1, k and v rows in pass 2
  auto weights = at::empty({B, g.T, g.heads, g.offsets}, qkv.options());
  auto score_grads = at::empty({B, g.T, g.heads, g.offsets}, qkv.options());
  AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "mano_windows_backward", [&] {
    with_geometry(window, d, [&](auto k, auto dh) {
      backward_kernel<scalar_t, decltype(k)::value, decltype(dh)::value>(
          levels, g, B, stride, scalar_t(scale), qkv.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(),
          grad.mutable_data_ptr<scalar_t>(), weights.mutable_data_ptr<scalar_t>(),
          score_grads.mutable_data_ptr<scalar_t>());
    });
  });
  return grad;
}

}  // namespace

TORCH_LIBRARY(attnbench_mano, m) {
  m.def("windows(Tensor qkv, int[] shapes, int window, int stride, float scale) -> Tensor");
  m.def("windows_backward(Tensor grad_out, Tensor qkv, int[] shapes, int window, int stride, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(attnbench_mano, CPU, m) {
  m.impl("windows", &windows_forward);
  m.impl("windows_backward", &windows_backward);
}
