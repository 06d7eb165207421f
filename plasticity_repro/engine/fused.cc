// The fused CPU engine: one activation of B networks (all Euler steps) in one XLA custom call.
//
// Computes exactly what plasticity_repro.model.activation computes (see that module for the
// model as the spec states it), arranged for the CPU: networks ride on the lanes of one SIMD
// vector (with AVX-512 16 float32 or 8 float64 networks, with AVX2 8 or 4), every per-step quantity of a chunk of networks
// stays in L1/L2 for the whole activation, and each synapse is visited once per step, in one pass
// that reads the old weight for the recurrent drive and the per-term effects and writes the new
// weight in place. Chunks of networks are spread over threads.
//
// Arrays have the network axis last (the layout of plasticity_repro.model): frozen arrivals
// (B, steps, N) and this activation's fresh arrival steps (B, N, K) (inputs.fresh_events), weight blocks (n_post, n_pre, B), coefficients (3, 20, B) with the term mask
// applied, trace decays dt / tau (3, 12, B), hetero (3, B). The 20-term family's structure
// (which factor each term multiplies, which trace slot it reads) is fixed here; the Python side
// checks it against rules.TERMS before calling.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kTerms = 20;
constexpr int kSlots = 12;
// POST_TRACE_SLOTS and PRE_TRACE_SLOTS of rules.py: the trace slot of each post (pre) trace.
constexpr int kPostSlot[6] = {0, 1, 4, 6, 7, 10};
constexpr int kPreSlot[6] = {2, 3, 5, 8, 9, 11};

// Scalar parameters, in the order of engine/fused.py's PARAMS.
enum Param {
  kNe, kNi, kSteps, kKernelSteps, kPlasticEE, kPlasticEI, kPlasticIE, kHetero, kEffects,
  kThreads, kStepE, kStepI, kVth, kLr, kRateNorm, kTraceNorm, kGate, kDaleEps, kQ, kQk, kKqk,
  kAmpE, kAmpI, kWindowStart, kWindowStop, kWriteRates, kNParams
};

// The lane vector is the widest the CPU executes natively: 64 bytes with AVX-512, 32 with AVX,
// else 16. A wider generic vector than the hardware's is lowered through memory (about 20x slower
// on an AVX2 core). Each lane is one network and no operation mixes lanes, so the width changes
// the speed only, never a result (tests/test_engine.py builds two widths and compares bits).
#ifndef PR_VECTOR_BYTES
#if defined(__AVX512F__)
#define PR_VECTOR_BYTES 64
#elif defined(__AVX__)
#define PR_VECTOR_BYTES 32
#else
#define PR_VECTOR_BYTES 16
#endif
#endif

template <typename T>
struct Simd {
  static constexpr int L = PR_VECTOR_BYTES / sizeof(T);
  typedef T V __attribute__((vector_size(PR_VECTOR_BYTES)));
};

template <typename V, typename T>
inline V splat(T x) {
  V v;
  for (int l = 0; l < int(sizeof(V) / sizeof(T)); ++l) v[l] = x;
  return v;
}

// max(a, 0) that keeps a NaN (jnp.maximum does; a blown-up run must show NaN rates)
template <typename V>
inline V relu(V a) { return a < 0 ? V{} : a; }
template <typename V>
inline V vabs(V a) { return a < 0 ? -a : a; }

// One synapse block (post x pre) of one chunk of networks, its state kept across the steps.
template <typename T>
struct Block {
  using V = typename Simd<T>::V;
  int np = 0, nq = 0, po = 0, qo = 0;  // sizes and offsets of the post and pre cells in the state
  bool plastic = false;
  std::vector<V> w, g, sgn;             // weight, gate (0/1), Dale sign at activation start
  std::vector<V> post, pre;             // traces (6, np), (6, nq)
  V c[kTerms], d_post[6], d_pre[6], eff[kTerms];
  V hetero[3];
  std::vector<V> grow, gcol;            // row and column sums of the gate
  V gsum;
  // per-step vectors
  std::vector<V> y, yt, x, xt;          // factors: (np), (6, np), (nq), (6, nq)
  std::vector<V> col0, col1, row0, row1, a0, b0, a1, b1;
  std::vector<V> acc_v, gx, gxt, hrow, hx, hxt, hcol;

  void resize() {
    size_t nw = size_t(np) * nq;
    w.assign(nw, V{});
    if (!plastic) return;
    g.assign(nw, V{}); sgn.assign(nw, V{});
    post.assign(6 * np, V{}); pre.assign(6 * nq, V{});
    grow.assign(np, V{}); gcol.assign(nq, V{});
    y.assign(np, V{}); yt.assign(6 * np, V{}); x.assign(nq, V{}); xt.assign(6 * nq, V{});
    col0.assign(np, V{}); col1.assign(np, V{});
    row0.assign(nq, V{}); row1.assign(nq, V{}); a0.assign(nq, V{}); b0.assign(nq, V{});
    a1.assign(nq, V{}); b1.assign(nq, V{});
    gx.assign(np, V{}); gxt.assign(np, V{}); hrow.assign(np, V{}); hx.assign(np, V{});
    hxt.assign(np, V{}); hcol.assign(nq, V{});
  }
};

template <typename T>
struct Args {
  const T* frozen;              // (B, steps, N): arrivals shared by every activation
  const int32_t* events;        // (B, N, K): steps of this activation's fresh arrivals, -1: none
  int64_t K_ev;
  const T* w_in[3];             // (np, nq, B) each: ee, ei, ie
  const T* plastic_in[3];       // same shapes, 0/1
  const T* coefs;               // (3, 20, B)
  const T* decay;               // (3, 12, B)
  const T* hetero;              // (3, B)
  T* rates;                     // (steps, N, B), or null: not kept
  T* mean_rate;                 // (B,): mean over steps and cells
  T* w_out[3];
  T* effects;                   // (3, 20, B)
  int64_t B;
  const double* p;
};

// Lane l of the chunk starting at network b0 reads network min(b0 + l, B - 1): the padding lanes
// repeat the last network (finite arithmetic) and are never written back.
template <typename T>
inline typename Simd<T>::V load(const T* base, int64_t b0, int64_t B) {
  typename Simd<T>::V v;
  constexpr int L = Simd<T>::L;
  if (b0 + L <= B) {
    std::memcpy(&v, base + b0, sizeof(v));
  } else {
    for (int l = 0; l < L; ++l) v[l] = base[std::min<int64_t>(b0 + l, B - 1)];
  }
  return v;
}

template <typename T>
inline void store(T* base, int64_t b0, int64_t B, const typename Simd<T>::V& v) {
  constexpr int L = Simd<T>::L;
  if (b0 + L <= B) {
    std::memcpy(base + b0, &v, sizeof(v));
  } else {
    for (int l = 0; b0 + l < B; ++l) base[b0 + l] = v[l];
  }
}

// The pass over one plastic block's synapses in a step: for each synapse (i, j) it reads the
// old weight for the drive (sum_j w_ij r_j) and the effects' bilinear forms (G x, G x~, and
// H = G |w| summed and times x, x~), and writes the new weight
//   w + lr g (col0_i + row0_j + y_i a0_j + y~_i b0_j  +  w (col1_i + row1_j + y_i a1_j + y~'_i b1_j))
// with Dale's clamp to the activation-start sign (engine/xla_rule.block_update is the same sum).
template <typename T>
struct SynapsePass {
  using V = typename Simd<T>::V;
  int np, nq;
  V* __restrict w;
  const V* __restrict g;
  const V* __restrict sg;
  const V* __restrict rq;
  const V* __restrict x;
  const V* __restrict xt3;
  const V* __restrict xt9;
  const V* __restrict row0;
  const V* __restrict a0;
  const V* __restrict b0;
  const V* __restrict row1;
  const V* __restrict a1;
  const V* __restrict b1;
  const V* __restrict y;
  const V* __restrict yt1;
  const V* __restrict yt7;
  const V* __restrict col0;
  const V* __restrict col1;
  V* __restrict v;
  V* __restrict gx_o;
  V* __restrict gxt_o;
  V* __restrict hrow_o;
  V* __restrict hx_o;
  V* __restrict hxt_o;
  V* __restrict hcol;
  V vlr, veps;

  template <bool kTrack, bool kDale>
  void run() const {
    for (int i = 0; i < np; ++i) {
      V* __restrict wr = w + size_t(i) * nq;
      const V* __restrict gr = g + size_t(i) * nq;
      const V* __restrict sr = sg + size_t(i) * nq;
      const V yi = y[i], y1 = yt1[i], y7 = yt7[i], c0 = col0[i], c1 = col1[i];
      V acc = V{}, gx = V{}, gxt = V{}, hrow = V{}, hx = V{}, hxt = V{};
      for (int j = 0; j < nq; ++j) {
        const V wij = wr[j], gij = gr[j];
        acc += wij * rq[j];
        if (kTrack) {
          const V h = gij * vabs(wij);
          gx += gij * x[j];
          gxt += gij * xt3[j];
          hrow += h;
          hcol[j] += h;
          hx += h * x[j];
          hxt += h * xt9[j];
        }
        const V m0 = c0 + row0[j] + yi * a0[j] + y1 * b0[j];
        const V m1 = c1 + row1[j] + yi * a1[j] + y7 * b1[j];
        V wn = wij + (vlr * gij) * (m0 + wij * m1);
        if (kDale) wn = sr[j] * wn < 0 ? sr[j] * veps : wn;
        wr[j] = wn;
      }
      v[i] += acc;
      if (kTrack) { gx_o[i] = gx; gxt_o[i] = gxt; hrow_o[i] = hrow; hx_o[i] = hx; hxt_o[i] = hxt; }
    }
  }
};

template <typename T>
void run_chunk(const Args<T>& a, int64_t b0) {
  using V = typename Simd<T>::V;
  const double* p = a.p;
  const int ne = int(p[kNe]), ni = int(p[kNi]), n = ne + ni;
  const int n_steps = int(p[kSteps]), K = int(p[kKernelSteps]);
  const int ws = int(p[kWindowStart]), wn_steps = int(p[kWindowStop]) - ws;
  const bool hetero_on = p[kHetero] != 0, track = p[kEffects] != 0;
  const int64_t B = a.B;
  const V vth = splat<V>(T(p[kVth])), zero = V{};
  const T lr = T(p[kLr]), rate_norm = T(p[kRateNorm]), trace_norm = T(p[kTraceNorm]);
  const T gate_thr = T(p[kGate]), dale_eps = T(p[kDaleEps]);
  const V q = splat<V>(T(p[kQ])), qk = splat<V>(T(p[kQk])), kqk = splat<V>(T(p[kKqk]));

  std::vector<V> s(n), r(n), rn(n), A(n), Bd(n), v(n), amp(n), step_cell(n);
  for (int i = 0; i < n; ++i) {
    amp[i] = splat<V>(T(i < ne ? p[kAmpE] : p[kAmpI]));
    step_cell[i] = splat<V>(T(i < ne ? p[kStepE] : p[kStepI]));
  }
  Block<T> blk[3];
  const int dims[3][4] = {{ne, ne, 0, 0}, {ni, ne, ne, 0}, {ne, ni, 0, ne}};  // np, nq, po, qo
  for (int t = 0; t < 3; ++t) {
    Block<T>& b = blk[t];
    b.np = dims[t][0]; b.nq = dims[t][1]; b.po = dims[t][2]; b.qo = dims[t][3];
    b.plastic = p[kPlasticEE + t] != 0 && b.np > 0 && b.nq > 0;
    b.resize();
    const size_t nw = size_t(b.np) * b.nq;
    for (size_t k = 0; k < nw; ++k) b.w[k] = load(a.w_in[t] + k * B, b0, B);
    for (int k = 0; k < kTerms; ++k) b.eff[k] = zero;
    if (!b.plastic) continue;
    for (size_t k = 0; k < nw; ++k) {
      V pl = load(a.plastic_in[t] + k * B, b0, B), w = b.w[k];
      b.g[k] = (pl != 0) & (vabs(w) > gate_thr) ? splat<V>(T(1)) : zero;
      b.sgn[k] = w >= 0 ? splat<V>(T(1)) : splat<V>(T(-1));
    }
    for (int k = 0; k < kTerms; ++k) b.c[k] = load(a.coefs + (t * kTerms + k) * B, b0, B);
    for (int k = 0; k < 6; ++k) {
      b.d_post[k] = load(a.decay + (t * kSlots + kPostSlot[k]) * B, b0, B);
      b.d_pre[k] = load(a.decay + (t * kSlots + kPreSlot[k]) * B, b0, B);
    }
    for (int k = 0; k < 3; ++k) b.hetero[k] = load(a.hetero + k * B, b0, B);
    b.gsum = zero;
    for (int i = 0; i < b.np; ++i)
      for (int j = 0; j < b.nq; ++j) {
        const V gij = b.g[size_t(i) * b.nq + j];
        b.grow[i] += gij; b.gcol[j] += gij;
      }
    for (int i = 0; i < b.np; ++i) b.gsum += b.grow[i];
  }
  if (a.rates)
    for (int i = 0; i < n; ++i) store(a.rates + size_t(i) * B, b0, B, zero);  // row 0 at rest
  // the chunk's arrivals of this activation, (steps, N) lane vectors: the frozen ones (each
  // network's are contiguous in the input) plus this activation's fresh events
  constexpr int L = Simd<T>::L;
  std::vector<V> arr(size_t(n_steps) * n);
  for (int l = 0; l < L; ++l) {
    const T* src = a.frozen + size_t(std::min<int64_t>(b0 + l, B - 1)) * n_steps * n;
    for (size_t k = 0; k < size_t(n_steps) * n; ++k) arr[k][l] = src[k];
  }
  for (int l = 0; l < L && b0 + l < B; ++l)
    for (int i = 0; i < n; ++i)
      for (int64_t k = 0; k < a.K_ev; ++k) {
        const int32_t st = a.events[((b0 + l) * n + i) * a.K_ev + k];
        if (st >= ws && st < ws + wn_steps) arr[size_t(st) * n + i][l] += T(1);
      }
  auto arrivals = [&](int step, int i) { return arr[size_t(step) * n + i]; };
  double total[L] = {0};

  for (int it = 0; it + 1 < n_steps; ++it) {
    // the drive: kernel recursion (inputs.drive_step) and the new state from the old rates
    for (int i = 0; i < n; ++i) {
      const V a_now = arrivals(it, i);
      const V a_old = it >= K ? arrivals(it - K, i) : zero;
      const V Bn = q * (Bd[i] + A[i]) - kqk * a_old;
      A[i] = q * A[i] + a_now - qk * a_old;
      Bd[i] = Bn;
      rn[i] = relu(s[i] - vth);
    }
    for (int t = 0; t < 3; ++t) {
      Block<T>& b = blk[t];
      if (!b.plastic) continue;
      // traces move with the old rates; the factors use the new rates and the new traces
      for (int k = 0; k < 6; ++k) {
        const V dp = b.d_post[k], dq = b.d_pre[k];
        for (int i = 0; i < b.np; ++i) {
          V& tr = b.post[k * b.np + i];
          tr = tr * (1 - dp) + r[b.po + i] * dp;
          b.yt[k * b.np + i] = tr / trace_norm;
        }
        for (int j = 0; j < b.nq; ++j) {
          V& tr = b.pre[k * b.nq + j];
          tr = tr * (1 - dq) + r[b.qo + j] * dq;
          b.xt[k * b.nq + j] = tr / trace_norm;
        }
      }
      const V* c = b.c;
      for (int i = 0; i < b.np; ++i) {
        const V y = rn[b.po + i] / rate_norm;
        const V* yt = &b.yt[i];
        const int st = b.np;  // yt[k * np + i]
        b.y[i] = y;
        // plain half: 1, y, y~(slot 0), y~ y(slot 4); w half: w, w y, w y~(6), w y~ y(10)
        b.col0[i] = c[0] + c[1] * y + c[4] * yt[0 * st] + c[8] * (yt[2 * st] * y);
        b.col1[i] = c[10] + c[11] * y + c[14] * yt[3 * st] + c[18] * (yt[5 * st] * y);
      }
      for (int j = 0; j < b.nq; ++j) {
        const V x = rn[b.qo + j] / rate_norm;
        const V* xt = &b.xt[j];
        const int st = b.nq;
        b.x[j] = x;
        // x, x~(2), x~ x(5) | w x, w x~(8), w x~ x(11); pairs y.(x y, x~ y(3)), y~(1).(x y~)
        b.row0[j] = c[2] * x + c[6] * xt[0 * st] + c[9] * (xt[2 * st] * x);
        b.row1[j] = c[12] * x + c[16] * xt[3 * st] + c[19] * (xt[5 * st] * x);
        b.a0[j] = c[3] * x + c[7] * xt[1 * st];
        b.b0[j] = c[5] * x;
        b.a1[j] = c[13] * x + c[17] * xt[4 * st];
        b.b1[j] = c[15] * x;
        b.hcol[j] = zero;
      }
    }
    // one pass over every synapse: drive (old W, old rates), effects (old W), update in place
    for (int i = 0; i < n; ++i) v[i] = zero;
    for (int t = 0; t < 3; ++t) {
      Block<T>& b = blk[t];
      const int np = b.np, nq = b.nq;
      const V* rq = &r[b.qo];
      if (!b.plastic) {
        for (int i = 0; i < np; ++i) {
          const V* w = &b.w[size_t(i) * nq];
          V acc = zero;
          for (int j = 0; j < nq; ++j) acc += w[j] * rq[j];
          v[b.po + i] += acc;
        }
        continue;
      }
      const V vlr = splat<V>(lr), veps = splat<V>(dale_eps);
      const bool dale = !(hetero_on && t == 0);   // with the bound, Dale's clamp comes after it
      SynapsePass<T> sp{np, nq, b.w.data(), b.g.data(), b.sgn.data(), rq, b.x.data(),
                        &b.xt[1 * nq], &b.xt[4 * nq], b.row0.data(), b.a0.data(), b.b0.data(),
                        b.row1.data(), b.a1.data(), b.b1.data(), b.y.data(), &b.yt[1 * np],
                        &b.yt[4 * np], b.col0.data(), b.col1.data(), &v[b.po], b.gx.data(),
                        b.gxt.data(), b.hrow.data(), b.hx.data(), b.hxt.data(), b.hcol.data(),
                        vlr, veps};
      if (track) { dale ? sp.template run<true, true>() : sp.template run<true, false>(); }
      else { dale ? sp.template run<false, true>() : sp.template run<false, false>(); }
      if (hetero_on && t == 0) {
        // the hand-made rule's bound (model.heterosynaptic): the outgoing excess, then the
        // incoming excess of the weights so depressed, then the cap and Dale's clamp
        const V sum_max = b.hetero[0], rate = b.hetero[1], cap = b.hetero[2];
        std::vector<V> ex_in(np, zero), ex_out(nq, zero);
        for (int i = 0; i < np; ++i)
          for (int j = 0; j < nq; ++j) ex_out[j] += b.w[size_t(i) * nq + j];
        for (int j = 0; j < nq; ++j) ex_out[j] = rate * relu(ex_out[j] - sum_max);
        for (int i = 0; i < np; ++i)
          for (int j = 0; j < nq; ++j) {
            const size_t k = size_t(i) * nq + j;
            b.w[k] = b.w[k] - b.g[k] * ex_out[j];
            ex_in[i] += b.w[k];
          }
        for (int i = 0; i < np; ++i) ex_in[i] = rate * relu(ex_in[i] - sum_max);
        for (int i = 0; i < np; ++i)
          for (int j = 0; j < nq; ++j) {
            const size_t k = size_t(i) * nq + j;
            V wn = b.w[k] - b.g[k] * ex_in[i];
            wn = b.g[k] > 0 ? (wn > cap ? cap : wn) : wn;
            b.w[k] = b.sgn[k] * wn < 0 ? b.sgn[k] * veps : wn;
          }
      }
      if (track) {
        // per-term sums over gated synapses of |c_k F_k| as bilinear forms of the factors
        V e[kTerms];
        for (int k = 0; k < kTerms; ++k) e[k] = zero;
        const V* yt = b.yt.data();
        const V* xt = b.xt.data();
        e[0] = b.gsum;
        for (int i = 0; i < np; ++i) {
          const V y = b.y[i], gr = b.grow[i], hr = b.hrow[i];
          e[1] += y * gr;
          e[3] += y * b.gx[i];
          e[4] += yt[0 * np + i] * gr;
          e[5] += yt[1 * np + i] * b.gx[i];
          e[7] += y * b.gxt[i];
          e[8] += yt[2 * np + i] * y * gr;
          e[10] += hr;
          e[11] += y * hr;
          e[13] += y * b.hx[i];
          e[14] += yt[3 * np + i] * hr;
          e[15] += yt[4 * np + i] * b.hx[i];
          e[17] += y * b.hxt[i];
          e[18] += yt[5 * np + i] * y * hr;
        }
        for (int j = 0; j < nq; ++j) {
          const V x = b.x[j], gc = b.gcol[j], hc = b.hcol[j];
          e[2] += x * gc;
          e[6] += xt[0 * nq + j] * gc;
          e[9] += xt[2 * nq + j] * x * gc;
          e[12] += x * hc;
          e[16] += xt[3 * nq + j] * hc;
          e[19] += xt[5 * nq + j] * x * hc;
        }
        for (int k = 0; k < kTerms; ++k) b.eff[k] += vabs(b.c[k]) * e[k];
      }
    }
    V step_sum = zero;
    for (int i = 0; i < n; ++i) {
      const V vi = amp[i] * Bd[i] + v[i];
      s[i] = s[i] + (vi - s[i]) * step_cell[i];
      r[i] = rn[i];
      step_sum += rn[i];
      if (a.rates) store(a.rates + (size_t(it + 1) * n + i) * B, b0, B, rn[i]);
    }
    for (int l = 0; l < L; ++l) total[l] += double(step_sum[l]);
  }
  V mean;
  for (int l = 0; l < L; ++l) mean[l] = T(total[l] / (double(n_steps) * n));
  store(a.mean_rate, b0, B, mean);
  for (int t = 0; t < 3; ++t) {
    const Block<T>& b = blk[t];
    const size_t nw = size_t(b.np) * b.nq;
    for (size_t k = 0; k < nw; ++k) store(a.w_out[t] + k * B, b0, B, b.w[k]);
    for (int k = 0; k < kTerms; ++k) store(a.effects + (t * kTerms + k) * B, b0, B, b.eff[k]);
  }
}

template <typename T>
void run_all(const Args<T>& a) {
  constexpr int L = Simd<T>::L;
  const int64_t n_chunks = (a.B + L - 1) / L;
  const int threads = int(std::max<int64_t>(1, std::min<int64_t>(int64_t(a.p[kThreads]), n_chunks)));
  auto work = [&](int tid) {
    for (int64_t c = tid; c < n_chunks; c += threads) run_chunk<T>(a, c * L);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
}

template <ffi::DataType DT>
ffi::Error Activation(ffi::Buffer<DT> frozen, ffi::Buffer<ffi::S32> events, ffi::Buffer<DT> w_ee, ffi::Buffer<DT> w_ei,
                      ffi::Buffer<DT> w_ie, ffi::Buffer<DT> pl_ee, ffi::Buffer<DT> pl_ei,
                      ffi::Buffer<DT> pl_ie, ffi::Buffer<DT> coefs, ffi::Buffer<DT> decay,
                      ffi::Buffer<DT> hetero, ffi::Span<const double> params,
                      ffi::ResultBuffer<DT> rates, ffi::ResultBuffer<DT> mean_rate,
                      ffi::ResultBuffer<DT> o_ee, ffi::ResultBuffer<DT> o_ei,
                      ffi::ResultBuffer<DT> o_ie, ffi::ResultBuffer<DT> effects) {
  using T = ffi::NativeType<DT>;
  if (params.size() != kNParams) return ffi::Error::InvalidArgument("fused engine: wrong params length");
  auto dims = frozen.dimensions();
  if (dims.size() != 3) return ffi::Error::InvalidArgument("fused engine: arrivals must be (B, steps, N)");
  Args<T> a;
  a.B = dims[0];
  if (dims[2] != int64_t(params[kNe] + params[kNi]) || dims[1] != int64_t(params[kSteps]))
    return ffi::Error::InvalidArgument("fused engine: arrivals shape does not match the parameters");
  auto ed = events.dimensions();
  if (ed.size() != 3 || ed[0] != a.B || ed[1] != dims[2])
    return ffi::Error::InvalidArgument("fused engine: events must be (B, N, K)");
  a.frozen = frozen.typed_data();
  a.events = events.typed_data();
  a.K_ev = ed[2];
  a.w_in[0] = w_ee.typed_data(); a.w_in[1] = w_ei.typed_data(); a.w_in[2] = w_ie.typed_data();
  a.plastic_in[0] = pl_ee.typed_data(); a.plastic_in[1] = pl_ei.typed_data();
  a.plastic_in[2] = pl_ie.typed_data();
  a.coefs = coefs.typed_data(); a.decay = decay.typed_data(); a.hetero = hetero.typed_data();
  a.rates = params[kWriteRates] != 0 ? rates->typed_data() : nullptr;
  a.mean_rate = mean_rate->typed_data();
  a.w_out[0] = o_ee->typed_data(); a.w_out[1] = o_ei->typed_data(); a.w_out[2] = o_ie->typed_data();
  a.effects = effects->typed_data();
  a.p = params.begin();
  run_all<T>(a);
  return ffi::Error::Success();
}

}  // namespace

#define PR_BIND(DT)                                                                        \
  ffi::Ffi::Bind()                                                                         \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<ffi::S32>>()                                 \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()                \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()                \
      .Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>().Arg<ffi::Buffer<DT>>()                \
      .Attr<ffi::Span<const double>>("params")                                             \
      .Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>()                \
      .Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>().Ret<ffi::Buffer<DT>>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(PrActivationF32, Activation<ffi::F32>, PR_BIND(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(PrActivationF64, Activation<ffi::F64>, PR_BIND(ffi::F64));

// The lane vector's width in bytes (PR_VECTOR_BYTES).
extern "C" int64_t pr_vector_bytes() { return PR_VECTOR_BYTES; }

// A floating-point peak probe for `make bench`: `iters` rounds of 12 independent chains of
// float32 fused multiply-adds on lane vectors (12 x lanes x 2 flops per round); returns a value
// that depends on every chain so the loop is not optimised away. The engine is compiled without
// contraction (-ffp-contract=off); this probe alone asks for it, so it measures fused FMAs.
extern "C" __attribute__((optimize("fp-contract=fast"))) double pr_fma_peak(int64_t iters) {
  using V = Simd<float>::V;
  V acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = splat<V>(1.0f + 1e-3f * k);
  const V m = splat<V>(0.999999f), c = splat<V>(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int k = 0; k < 12; ++k) acc[k] = acc[k] * m + c;
  double s = 0;
  for (int k = 0; k < 12; ++k)
    for (int l = 0; l < Simd<float>::L; ++l) s += acc[k][l];
  return s;
}
