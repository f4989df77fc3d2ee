// MANO's per-level window attention for every level of the V-cycle in one CPU kernel (forward and backward).
//
// Softmax attention inside every k×k window (stride s) of every level, the outputs of the overlapping windows
// averaged per token: the operator W of attnbench/attention/mano.py, registered as the torch operators
// attnbench_mano::windows and attnbench_mano::windows_backward (autograd is attached in kernels/__init__.py).
//
// Layout, channel-first: qkv [3, heads, d, B, T] contiguous (what the projection W · xᵀ gives without a transpose
// copy), the levels' tokens concatenated along T (finest first, each level row-major); shapes = [h_0, w_0, h_1,
// w_1, ...]. Output [heads, d, B, T]. One channel of one head is thus a contiguous row of a level's tokens.
//
// Per query token i of a level, everything it needs is local: its dot products with the keys at the (2k-1)²
// offsets δ that a window containing i can reach, one softmax per window containing i (over that window's k²
// offsets), the per-offset weight W_δ summed over those windows and divided by their count, and the output
// Σ_δ W_δ v_{i+δ}. In the flattened level an offset δ = (dy, dx) is a fixed distance dy·w + dx, so the kernel
// takes a block of L consecutive tokens (one vector register: 16 in float32) and computes all of the above for
// the block's tokens at once, one lane per token: a score is d multiply-adds of whole vectors (q of the block
// times k of the block moved by δ), and the softmaxes are vector arithmetic across lanes. Lanes whose key at δ
// lies outside the level (across its left or right edge, or above or below it) read another row's, level's or
// entry's values and are masked out; only near the ends of a tensor is a load checked lane by lane.
//
// No per-window copies and no probability tensor: the backward recomputes the scores (flash attention's trade)
// and keeps only qkv. Work per token and head: 2·(2k-1)² multiply-adds of length d forward, about twice that
// backward. Parallel over blocks (entry, level, L tokens), a task's blocks in chunks of 16 run head by head (one
// head's neighbouring blocks share their keys and values in L1); every output element is written by one task, so
// results do not depend on the thread count. The backward runs in two passes so that no two tasks write the same
// memory: the first gives every query its gradient and stores, per query and offset, the weight W_δ and the score
// gradient; the second gathers each key's and value's gradient from the queries that reached it. (A
// token-at-a-time kernel, with horizontal sums per dot product and scalar softmaxes, was 2.7-3.4× slower forward:
// profiled with perf and measured, see results/investigations/mano-native.)

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t kMaxWindow = 4;  // the largest window compiled (with_window): mano.NATIVE_MAX_WINDOW

// One vector register of lanes (GCC / Clang vector extensions: the compiler emits the host's widest instructions,
// and splits them where the host has narrower ones).
typedef float VecF __attribute__((vector_size(64)));
typedef double VecD __attribute__((vector_size(64)));
typedef int32_t VecI __attribute__((vector_size(64)));

template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
  using V = VecF;
  static constexpr int64_t n = 16;
};
template <>
struct Lanes<double> {
  using V = VecD;
  static constexpr int64_t n = 8;
};

template <typename V, typename T>
inline V splat(T a) {
  return V{} + a;
}

// e^x on float lanes: Cephes' expf (range reduction by ln 2 in two parts, a degree-6 polynomial, the exponent set
// by bits), within about 1 ulp of the library's over [-87, 0] (checked on a sample); inputs are clamped to
// [-87, 88] (e^-87 is about 1e-38).
inline VecF exp_lanes(VecF x) {
  const VecF lo = splat<VecF>(-87.0f), hi = splat<VecF>(88.0f), magic = splat<VecF>(12582912.0f);
  VecF v = x < lo ? lo : x;
  v = v > hi ? hi : v;
  const VecF n = (v * 1.44269504088896341f + magic) - magic;  // round(v / ln 2) by the 1.5 · 2^23 trick
  v -= n * 0.693359375f;
  v -= n * -2.12194440e-4f;
  VecF y = splat<VecF>(1.9875691500e-4f);
  y = y * v + 1.3981999507e-3f;
  y = y * v + 8.3334519073e-3f;
  y = y * v + 4.1665795894e-2f;
  y = y * v + 1.6666665459e-1f;
  y = y * v + 5.0000001201e-1f;
  y = y * v * v + v + 1.0f;
  const VecI bits = (__builtin_convertvector(n, VecI) + 127) << 23;
  return y * (VecF)bits;  // a cast between vector types of one size keeps the bits
}

inline VecD exp_lanes(VecD x) {  // float64 (the tests' precision): the library's exponential, lane by lane
  VecD out;
  for (int l = 0; l < 8; ++l) out[l] = std::exp(x[l]);
  return out;
}

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
  TORCH_CHECK(qkv.dim() == 5 && qkv.size(0) == 3 && qkv.size(4) == offset,
              "mano windows: qkv must be [3, heads, d, B, T] with T = ", offset, " tokens, got ", qkv.sizes());
  TORCH_CHECK(qkv.is_contiguous() && qkv.device().is_cpu(), "mano windows: qkv must be a contiguous CPU tensor");
  return levels;
}

// Sizes: qkv [3, heads, d, B, T]; a part (q, k or v) is heads·d rows of B·T tokens.
struct Geometry {
  int64_t heads, d, B, T;
  int64_t channel() const { return B * T; }
  int64_t part() const { return heads * d * B * T; }
};

// The lanes of base[at, at + L) that lie in [0, size), zeros elsewhere. Out of line and cold: it serves only blocks
// near a tensor's ends, and inlined at every load it tripled the kernel's code (which a first call pages in).
template <typename T>
__attribute__((noinline, cold)) typename Lanes<T>::V load_lanes(const T* base, int64_t size, int64_t at) {
  typename Lanes<T>::V v;
  for (int64_t l = 0; l < Lanes<T>::n; ++l) v[l] = at + l >= 0 && at + l < size ? base[at + l] : T(0);
  return v;
}

// Vector loads from a tensor's memory [0, size). Checked: lanes outside take 0 (only near the tensor's ends).
template <typename T, bool Checked>
struct Loader {
  using V = typename Lanes<T>::V;
  const T* base;
  int64_t size;
  inline V operator()(int64_t at) const {
    if (Checked && (at < 0 || at + Lanes<T>::n > size)) return load_lanes(base, size, at);
    V v;
    std::memcpy(&v, base + at, sizeof v);
    return v;
  }
};

template <typename T>
inline void store(T* p, const typename Lanes<T>::V& v, int64_t n) {
  if (n == Lanes<T>::n) std::memcpy(p, &v, sizeof v);
  else for (int64_t l = 0; l < n; ++l) p[l] = v[l];
}

// One block of L consecutive tokens of a level, for window K (a template parameter, so the loops over offsets and
// windows unroll and their vectors stay in registers).
template <typename T, int64_t K>
struct Block {
  using V = typename Lanes<T>::V;
  static constexpr int64_t L = Lanes<T>::n, D = 2 * K - 1, kOffsets = D * D, kRoles = K * K;
  int64_t t0, n;            // the block's first token in the level, and how many of its lanes are tokens (<= L)
  int64_t shift[kOffsets];  // the offset's distance in the flattened level: dy·w + dx
  V key_ok[kOffsets];       // 1 where the lane's key at the offset lies in the level
  V window_ok[kRoles];      // 1 where the lane's window of role (ay, ax) — top-left (y - ay, x - ax) — exists
  V inv_count;              // 1 / the number of windows containing the lane's token

  static constexpr int64_t offset_of(int64_t role, int64_t u, int64_t v) {  // key (u, v) of a role's window
    return (K - 1 - role / K + u) * D + (K - 1 - role % K + v);
  }
  static constexpr int64_t mirror(int64_t o) { return kOffsets - 1 - o; }  // -δ

  void place(const Level& level, int64_t first, int64_t s) {
    t0 = first, n = std::min(L, level.h * level.w - first);
    V yy, xx;
    int64_t y = first / level.w, x = first % level.w;
    for (int64_t l = 0; l < L; ++l) {  // lanes past the level's end take positions past its last row: masked out
      yy[l] = T(y), xx[l] = T(x);
      if (++x == level.w) x = 0, ++y;
    }
    const V zero = V{}, one = splat<V>(T(1)), h = splat<V>(T(level.h)), w = splat<V>(T(level.w));
    for (int64_t o = 0; o < kOffsets; ++o) {
      const int64_t dy = o / D - (K - 1), dx = o % D - (K - 1);
      shift[o] = dy * level.w + dx;
      const V y2 = yy + T(dy), x2 = xx + T(dx);
      key_ok[o] = (y2 >= zero) & (y2 < h) & (x2 >= zero) & (x2 < w) ? one : zero;
    }
    const V last_row = splat<V>(T(level.h - K)), last_col = splat<V>(T(level.w - K));
    V count = zero;
    for (int64_t r = 0; r < kRoles; ++r) {
      const V ty = yy - T(r / K), tx = xx - T(r % K);
      window_ok[r] = (ty >= zero) & (ty <= last_row) & (tx >= zero) & (tx <= last_col) ? one : zero;
      if (s > 1)  // windows start on multiples of the stride
        for (int64_t l = 0; l < L; ++l)
          if (int64_t(ty[l]) % s || int64_t(tx[l]) % s) window_ok[r][l] = T(0);
      count += window_ok[r];
    }
    inv_count = one / (count > zero ? count : one);  // every token of the level lies in >= 1 window (levels_of)
  }

  // From the raw scores q · k_{i+δ} of every offset: S scaled (and -inf where the key lies outside), P each
  // window role's softmax (0 where the window does not exist), W the averaged weights. Exponentials are shared
  // between a token's windows (they overlap): one per offset against the largest score of the token's windows,
  // instead of one per (window, key). A window whose own largest score is far below that (its exponentials could
  // underflow) takes its own, in those lanes.
  inline void softmaxes(V* S, T scale, V (*P)[K * K], V* W) const {
    constexpr T kSafeGap = sizeof(T) == 4 ? T(40) : T(300);  // exp(-gap) stays a normal number with full precision
    const V ninf = splat<V>(-INFINITY), zero = V{};
    for (int64_t o = 0; o < kOffsets; ++o) S[o] = key_ok[o] > zero ? S[o] * scale : ninf;
    V top = ninf, own_max[kRoles];
    for (int64_t r = 0; r < kRoles; ++r) {
      V m = ninf;
      for (int64_t u = 0; u < K; ++u)
        for (int64_t v = 0; v < K; ++v) m = S[offset_of(r, u, v)] > m ? S[offset_of(r, u, v)] : m;
      own_max[r] = m;
      top = (window_ok[r] > zero) & (m > top) ? m : top;
    }
    V E[kOffsets];
    for (int64_t o = 0; o < kOffsets; ++o) {
      const V e = S[o] - top;  // an offset outside every window of a lane may lie above the top: clamp, unused
      E[o] = exp_lanes(e < zero ? e : zero);
      W[o] = zero;
    }
    for (int64_t r = 0; r < kRoles; ++r) {
      V z = zero;
      for (int64_t u = 0; u < K; ++u)
        for (int64_t v = 0; v < K; ++v) z += (P[r][u * K + v] = E[offset_of(r, u, v)]);
      const auto own = (window_ok[r] > zero) & (top - own_max[r] > kSafeGap);
      bool any = false;
      for (int64_t l = 0; l < L; ++l) any |= own[l] != 0;
      for (int64_t l = 0; any && l < L; ++l) {  // rare
        if (!own[l]) continue;
        T sum = 0;
        for (int64_t u = 0; u < K; ++u)
          for (int64_t v = 0; v < K; ++v)
            sum += (P[r][u * K + v][l] = std::exp(S[offset_of(r, u, v)][l] - own_max[r][l]));
        z[l] = sum;
      }
      const V inv = window_ok[r] > zero ? T(1) / z : zero;
      for (int64_t u = 0; u < K; ++u)
        for (int64_t v = 0; v < K; ++v) W[offset_of(r, u, v)] += (P[r][u * K + v] *= inv);
    }
    for (int64_t o = 0; o < kOffsets; ++o) W[o] *= inv_count;
  }
};

// dst[c] = Σ_δ coef_δ · src[c] moved by δ, for the d channels c of one head (rows `channel` apart, src at the block's
// first token): the forward's output (coef = W, src = v) and the backward's dq (coef = dscore, src = k).
template <typename T, int64_t K, typename Load>
inline void gather(const Block<T, K>& block, const typename Lanes<T>::V* coef, const Load& load, int64_t src,
                   int64_t channel, int64_t d, T* dst) {
  using V = typename Lanes<T>::V;
  for (int64_t c = 0; c < d; ++c) {
    V acc = V{};
#pragma GCC unroll 64
    for (int64_t o = 0; o < Block<T, K>::kOffsets; ++o) acc += coef[o] * load(src + c * channel + block.shift[o]);
    store<T>(dst + c * channel, acc, block.n);
  }
}

// Calls f(std::false_type) when a block's loads all stay inside their tensors (none is checked), else
// f(std::true_type).
template <typename F>
inline void with_checks(bool inside, F&& f) {
  if (inside) f(std::false_type{});
  else f(std::true_type{});
}

// Blocks of all levels of one entry: the first block index of each level, and the total.
template <int64_t L>
std::vector<int64_t> block_starts(const std::vector<Level>& levels) {
  std::vector<int64_t> starts{0};
  for (const Level& level : levels) starts.push_back(starts.back() + (level.h * level.w + L - 1) / L);
  return starts;
}

// Calls f(level, first token) for every block of the tasks [begin, end) of B · blocks, with b the entry.
template <typename F>
inline void for_blocks(const std::vector<Level>& levels, const std::vector<int64_t>& starts, int64_t L,
                       int64_t begin, int64_t end, F&& f) {
  const int64_t blocks = starts.back();
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / blocks, block = task % blocks;
    size_t l = 0;
    while (block >= starts[l + 1]) ++l;
    f(b, levels[l], (block - starts[l]) * L);
  }
}

// Whether a block's loads from a [heads, d, B, T]-shaped part stay inside [0, size) at every shift: then none is
// checked. reach = (K-1)·(w+1), the largest |shift|.
inline bool inside(int64_t lowest, int64_t highest, int64_t size) { return lowest >= 0 && highest <= size; }

constexpr int64_t kGrain = 4;  // blocks per parallel task at least
// Blocks per chunk: a task places a chunk's blocks, then runs them head by head, so that one head's rows around
// neighbouring blocks (which share most of their keys and values) are read while they are still in L1; all heads
// of one block at a time spread the loads over heads · 3 · d rows (kernel alone, 64² forward, two ad-hoc
// measurements on the 2-core VM: 0.32–0.33 → 0.29–0.31 ms).
constexpr int64_t kChunk = 16;

// Calls f(block, b, level, first, reach, head) for every block of every entry b and every head, in parallel, the
// block placed (its masks and shifts); first = the block's first token in a row of B·T tokens, reach = (K-1)·(w+1),
// the largest |shift|.
template <typename T, int64_t K, typename F>
void parallel_blocks(const std::vector<Level>& levels, const Geometry& g, int64_t s, F&& f) {
  constexpr int64_t L = Lanes<T>::n;
  const auto starts = block_starts<L>(levels);
  at::parallel_for(0, g.B * starts.back(), kGrain, [&](int64_t begin, int64_t end) {
    Block<T, K> blocks[kChunk];
    int64_t entry[kChunk], first[kChunk];
    const Level* level[kChunk];
    for (int64_t chunk = begin; chunk < end; chunk += kChunk) {
      const int64_t n = std::min(kChunk, end - chunk);
      int64_t i = 0;
      for_blocks(levels, starts, L, chunk, chunk + n, [&](int64_t b, const Level& lv, int64_t t0) {
        blocks[i].place(lv, t0, s);
        entry[i] = b, level[i] = &lv, first[i] = b * g.T + lv.offset + t0;
        ++i;
      });
      for (int64_t head = 0; head < g.heads; ++head)
        for (int64_t j = 0; j < n; ++j)
          f(blocks[j], entry[j], *level[j], first[j], (K - 1) * (level[j]->w + 1), head);
    }
  });
}

template <typename T, int64_t K>
void forward_kernel(const std::vector<Level>& levels, const Geometry& g, int64_t s, T scale, const T* qkv, T* out) {
  using B_ = Block<T, K>;
  using V = typename B_::V;
  constexpr int64_t L = B_::L, kOffsets = B_::kOffsets;
  const int64_t ch = g.channel(), part = g.part();
  parallel_blocks<T, K>(levels, g, s, [&](const B_& block, int64_t /*b*/, const Level& /*level*/, int64_t first,
                                           int64_t reach, int64_t head) {
    auto run = [&](auto checked) {
      const Loader<T, decltype(checked)::value> load{qkv, 3 * part};
      const int64_t q = head * g.d * ch + first, k = part + q, v = 2 * part + q;
      V S[kOffsets], P[B_::kRoles][K * K], W[kOffsets];
      for (int64_t o = 0; o < kOffsets; ++o) S[o] = V{};
      for (int64_t c = 0; c < g.d; ++c) {
        const V qc = load(q + c * ch);
#pragma GCC unroll 64
        for (int64_t o = 0; o < kOffsets; ++o) S[o] += qc * load(k + c * ch + block.shift[o]);
      }
      block.softmaxes(S, scale, P, W);
      gather(block, W, load, v, ch, g.d, out + q);
    };
    with_checks(inside(first - reach, 2 * part + (g.heads * g.d - 1) * ch + first + L + reach, 3 * part), run);
  });
}

// Calls f(load, load_grad), the backward's loaders from qkv and grad_out, checked lane by lane unless `inner` (the
// block's loads all stay inside both tensors).
template <typename T, typename F>
inline void with_backward_loaders(bool inner, const T* qkv, const T* grad_out, int64_t part, F&& f) {
  with_checks(inner, [&](auto checked) {
    constexpr bool kChecked = decltype(checked)::value;
    f(Loader<T, kChecked>{qkv, 3 * part}, Loader<T, kChecked>{grad_out, part});
  });
}

// scratch: [B, heads, offsets, T] rows of the weights W_δ and of scale · dscore_δ per query, with `pad` elements
// before and after, so that a block's loads at any shift stay inside the allocation.
template <typename T, int64_t K>
void backward_kernel(const std::vector<Level>& levels, const Geometry& g, int64_t s, T scale, const T* qkv,
                     const T* grad_out, T* grad, T* weights, T* score_grads) {
  using B_ = Block<T, K>;
  using V = typename B_::V;
  constexpr int64_t L = B_::L, kOffsets = B_::kOffsets, kRoles = B_::kRoles;
  const int64_t ch = g.channel(), part = g.part();
  auto row_of = [&](int64_t b, int64_t head, int64_t o) { return ((b * g.heads + head) * kOffsets + o) * g.T; };
  // Pass 1, per query: recompute the windows' softmaxes; out_i = Σ_δ W_δ v_{i+δ} gives dW_δ = g_i · v_{i+δ};
  // W_δ is the windows' probabilities summed over their count, and each window's softmax backward gives the
  // score gradients; score_δ = scale · q_i · k_{i+δ} gives dq_i.
  parallel_blocks<T, K>(levels, g, s, [&](const B_& block, int64_t b, const Level& level, int64_t first,
                                           int64_t reach, int64_t head) {
    auto run = [&](const auto& load, const auto& load_grad) {
      const int64_t q = head * g.d * ch + first, k = part + q, v = 2 * part + q;
      V S[kOffsets], P[kRoles][K * K], W[kOffsets], GW[kOffsets], dS[kOffsets];
      for (int64_t o = 0; o < kOffsets; ++o) S[o] = GW[o] = dS[o] = V{};
      for (int64_t c = 0; c < g.d; ++c) {
        const V qc = load(q + c * ch), gc = load_grad(q + c * ch);
#pragma GCC unroll 64
        for (int64_t o = 0; o < kOffsets; ++o) {
          S[o] += qc * load(k + c * ch + block.shift[o]);
          GW[o] += gc * load(v + c * ch + block.shift[o]);
        }
      }
      block.softmaxes(S, scale, P, W);
      for (int64_t r = 0; r < kRoles; ++r) {  // dscore = p (dp - Σ p dp) per window, dp = dW / count
        V inner = V{};
        for (int64_t u = 0; u < K; ++u)
          for (int64_t v2 = 0; v2 < K; ++v2) inner += P[r][u * K + v2] * GW[B_::offset_of(r, u, v2)];
        for (int64_t u = 0; u < K; ++u)
          for (int64_t v2 = 0; v2 < K; ++v2) {
            const int64_t o = B_::offset_of(r, u, v2);
            dS[o] += P[r][u * K + v2] * (GW[o] - inner);
          }
      }
      for (int64_t o = 0; o < kOffsets; ++o) {
        dS[o] *= block.inv_count * scale;  // P is zero where no window exists, so dS is zero outside
        store<T>(weights + row_of(b, head, o) + level.offset + block.t0, W[o], block.n);
        store<T>(score_grads + row_of(b, head, o) + level.offset + block.t0, dS[o], block.n);
      }
      gather(block, dS, load, k, ch, g.d, grad + q);  // dq
    };
    const bool inner = inside(first - reach, 2 * part + (g.heads * g.d - 1) * ch + first + L + reach, 3 * part);
    with_backward_loaders(inner, qkv, grad_out, part, run);
  });
  // Pass 2, per key / value token j: dk_j = Σ_δ (scale · dscore_δ of query j-δ) q_{j-δ}, dv_j = Σ_δ W_δ(j-δ) g_{j-δ},
  // over the queries j-δ of j's level: a lane whose query at -δ lies outside the level takes 0 (whatever the
  // scratch holds there).
  parallel_blocks<T, K>(levels, g, s, [&](const B_& block, int64_t b, const Level& level, int64_t first,
                                           int64_t reach, int64_t head) {
    auto run = [&](const auto& load, const auto& load_grad) {
      const int64_t q = head * g.d * ch + first;
      V cS[kOffsets], cW[kOffsets];
      for (int64_t o = 0; o < kOffsets; ++o) {
        const int64_t at = level.offset + block.t0 - block.shift[o];
        const V ok = block.key_ok[B_::mirror(o)];
        V x;
        std::memcpy(&x, score_grads + row_of(b, head, o) + at, sizeof x);
        cS[o] = ok > V{} ? x : V{};
        std::memcpy(&x, weights + row_of(b, head, o) + at, sizeof x);
        cW[o] = ok > V{} ? x : V{};
      }
      for (int64_t c = 0; c < g.d; ++c) {
        V dk = V{}, dv = V{};
#pragma GCC unroll 64
        for (int64_t o = 0; o < kOffsets; ++o) {
          dk += cS[o] * load(q + c * ch - block.shift[o]);
          dv += cW[o] * load_grad(q + c * ch - block.shift[o]);
        }
        store<T>(grad + part + q + c * ch, dk, block.n);
        store<T>(grad + 2 * part + q + c * ch, dv, block.n);
      }
    };
    // q (part 0) and grad_out (one part) are read at -shift: the same bounds as the forward's, part by part.
    with_backward_loaders(inside(first - reach, (g.heads * g.d - 1) * ch + first + L + reach, part), qkv, grad_out,
                          part, run);
  });
}

// Calls f(K) with a compile-time constant for the runtime window k (1..kMaxWindow).
template <typename F>
void with_window(int64_t k, F&& f) {
  switch (k) {
    case 1: f(std::integral_constant<int64_t, 1>{}); break;
    case 2: f(std::integral_constant<int64_t, 2>{}); break;
    case 3: f(std::integral_constant<int64_t, 3>{}); break;
    case 4: f(std::integral_constant<int64_t, 4>{}); break;
    default: TORCH_CHECK(false, "mano windows: window must be in [1, ", kMaxWindow, "], got ", k);
  }
}

Geometry geometry_of(const at::Tensor& qkv) { return {qkv.size(1), qkv.size(2), qkv.size(3), qkv.size(4)}; }

at::Tensor windows_forward(const at::Tensor& qkv, at::IntArrayRef shapes, int64_t window, int64_t stride,
                           double scale) {
  const auto levels = levels_of(qkv, shapes, window, stride);
  const Geometry g = geometry_of(qkv);
  auto out = at::empty({g.heads, g.d, g.B, g.T}, qkv.options());
  AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "mano_windows_forward", [&] {
    with_window(window, [&](auto k) {
      forward_kernel<scalar_t, decltype(k)::value>(levels, g, stride, scalar_t(scale), qkv.const_data_ptr<scalar_t>(),
                                                   out.mutable_data_ptr<scalar_t>());
    });
  });
  return out;
}

at::Tensor windows_backward(const at::Tensor& grad_out_, const at::Tensor& qkv, at::IntArrayRef shapes,
                            int64_t window, int64_t stride, double scale) {
  const auto levels = levels_of(qkv, shapes, window, stride);
  const Geometry g = geometry_of(qkv);
  TORCH_CHECK(grad_out_.sizes() == at::IntArrayRef({g.heads, g.d, g.B, g.T}),
              "mano windows: grad_out must be [heads, d, B, T], got ", grad_out_.sizes());
  const auto grad_out = grad_out_.contiguous();
  auto grad = at::empty_like(qkv);  // every element is written: q rows in pass 1, k and v rows in pass 2
  // Scratch rows of the weights and score gradients, padded so that pass 2's loads at any shift stay inside.
  int64_t widest = 0;
  for (const Level& level : levels) widest = std::max(widest, level.w);
  const int64_t offsets = (2 * window - 1) * (2 * window - 1), rows = g.B * g.heads * offsets * g.T;
  const int64_t pad = (window - 1) * (widest + 1) + 16;
  auto weights = at::empty({rows + 2 * pad}, qkv.options());
  auto score_grads = at::empty({rows + 2 * pad}, qkv.options());
  AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "mano_windows_backward", [&] {
    with_window(window, [&](auto k) {
      backward_kernel<scalar_t, decltype(k)::value>(
          levels, g, stride, scalar_t(scale), qkv.const_data_ptr<scalar_t>(), grad_out.const_data_ptr<scalar_t>(),
          grad.mutable_data_ptr<scalar_t>(), weights.mutable_data_ptr<scalar_t>() + pad,
          score_grads.mutable_data_ptr<scalar_t>() + pad);
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
