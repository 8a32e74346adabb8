// Building blocks of sampling.cu (included there): order-preserving keys, a block-wide radix select over a row
// with count or probability-mass weights, and the search for the m-th tied element in token-id order.
//
// Candidate order is the CPU sampler's: logit descending, token id ascending on ties. A prefix of that order (the
// candidates that survive top-k and top-p) is kept as a "cut" (cutKey, cutId): token i is in the set when
// key(i) > cutKey, or key(i) == cutKey and i <= cutId. Probability mass is counted in 2^-60 fixed point in 64-bit
// integers, so every sum is exact and independent of the order of the atomic additions: the kernel's choice is
// reproducible run to run and differs from the CPU's double sums by at most vocab * 2^-60 in any cumulative value.
#pragma once
#include "common.cuh"

#define SAMPLE_THREADS 1024
#define SAMPLE_WARPS (SAMPLE_THREADS / WARP_SIZE)
#define RADIX_BINS 256
#define FIXED_ONE 1152921504606846976.0 // 2^60: one unit of probability in fixed point

// Monotone map float -> uint32: a < b (as floats) iff key(a) < key(b). -0 is folded onto +0 so they tie, as they
// compare equal on the CPU. Logits must not be NaN (-inf is fine: a masked token).
__device__ __forceinline__ unsigned int order_key(float f)
{
    unsigned int bits = __float_as_uint(f == 0.0f ? 0.0f : f);
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__device__ __forceinline__ float key_to_float(unsigned int key)
{
    return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// The per-row distribution: p(l) = exp((l - maxLogit) * invTemperature) * invSum, in F32 exactly as the CPU
// sampler rounds it, then scaled to fixed point. countMode: every token weighs 1 (top-k).
struct Weights
{
    float maxLogit;
    float invTemperature;
    float invSum;
    bool countMode;

    __device__ __forceinline__ float unnormalised(float logit) const { return expf((logit - maxLogit) * invTemperature); }

    __device__ __forceinline__ unsigned long long of(float logit) const
    {
        if (countMode)
        {
            return 1ull;
        }
        const float p = unnormalised(logit) * invSum;
        return (unsigned long long)((double)p * FIXED_ONE);
    }
};

struct Cut
{
    unsigned int key;
    int id;

    __device__ __forceinline__ bool contains(unsigned int k, int i) const { return k > key || (k == key && i <= id); }
};

struct SelectShared
{
    unsigned long long hist[RADIX_BINS];
    unsigned long long scratch[SAMPLE_WARPS];
    unsigned long long above; // weight of set members ranked before the current key prefix
    unsigned long long tieWeight;
    unsigned int prefix;
    int found;  // token id result of a search, or -1
    int failed; // the set's total weight is below the requested amount
};

// Inclusive block scan of v; *total receives the block's sum. Every thread must call it.
__device__ __forceinline__ unsigned long long block_scan_u64(unsigned long long v, unsigned long long* total,
                                                             unsigned long long* scratch)
{
    const int lane = threadIdx.x & (WARP_SIZE - 1);
    const int warp = threadIdx.x >> 5;
#pragma unroll
    for (int offset = 1; offset < WARP_SIZE; offset <<= 1)
    {
        const unsigned long long n = __shfl_up_sync(FULL_MASK, v, offset);
        if (lane >= offset)
        {
            v += n;
        }
    }
    __syncthreads();
    if (lane == WARP_SIZE - 1)
    {
        scratch[warp] = v;
    }
    __syncthreads();
    unsigned long long before = 0;
    unsigned long long sum = 0;
    const int warps = (blockDim.x + WARP_SIZE - 1) >> 5;
    for (int w = 0; w < warps; w++)
    {
        const unsigned long long s = scratch[w];
        before += w < warp ? s : 0ull;
        sum += s;
    }
    *total = sum;
    return before + v;
}

// Id of the m-th (1-based) token with key == key in ascending id order. The caller guarantees it exists.
__device__ __forceinline__ int find_mth_tie(const float* logits, int vocab, unsigned int key, unsigned long long m,
                                            SelectShared& sh)
{
    __syncthreads(); // earlier readers of sh.found are done
    if (threadIdx.x == 0)
    {
        sh.found = 0x7fffffff;
    }
    __syncthreads();
    if (m == 1)
    {
        // the lowest id with this key: one pass, no scan
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        {
            if (order_key(logits[i]) == key)
            {
                atomicMin(&sh.found, i);
            }
        }
        __syncthreads();
        return sh.found;
    }

    unsigned long long seen = 0;
    for (int base = 0; base < vocab; base += blockDim.x)
    {
        const int i = base + threadIdx.x;
        const unsigned long long flag = (i < vocab && order_key(logits[i]) == key) ? 1ull : 0ull;
        unsigned long long chunk;
        const unsigned long long inclusive = block_scan_u64(flag, &chunk, sh.scratch);
        if (flag && seen + inclusive == m)
        {
            sh.found = i;
        }
        seen += chunk;
        __syncthreads();
        if (seen >= m)
        {
            break; // uniform: every thread holds the same `seen`
        }
    }
    return sh.found;
}

// Walks the set in candidate order and returns the cut ending at the element where the running weight first
// reaches `need` (>= 1). If the whole set weighs less than `need`, returns `cut` unchanged and sets sh.failed.
// Four passes of 8 bits over the keys, each a 256-bin weight histogram of the members sharing the prefix so far.
__device__ __forceinline__ Cut radix_select(const float* logits, int vocab, Cut cut, Weights weights,
                                            unsigned long long need, SelectShared& sh)
{
    const int lane = threadIdx.x & (WARP_SIZE - 1);
    const int warp = threadIdx.x >> 5;
    __syncthreads(); // earlier readers of the shared state are done
    if (threadIdx.x == 0)
    {
        sh.above = 0;
        sh.prefix = 0;
        sh.failed = 0;
    }

    unsigned int mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8)
    {
        for (int b = threadIdx.x; b < RADIX_BINS; b += blockDim.x)
        {
            sh.hist[b] = 0;
        }
        __syncthreads();
        const unsigned int prefix = sh.prefix;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        {
            const float logit = logits[i];
            const unsigned int key = order_key(logit);
            if ((key & mask) == prefix && cut.contains(key, i))
            {
                atomicAdd(&sh.hist[(key >> shift) & 0xffu], weights.of(logit));
            }
        }
        __syncthreads();

        if (warp == 0)
        {
            // lane L owns bins 8L..8L+7; candidate order visits high bins first, so scan the lanes from the top
            const unsigned long long above = sh.above;
            unsigned long long own = 0;
#pragma unroll
            for (int b = 0; b < 8; b++)
            {
                own += sh.hist[8 * lane + b];
            }
            unsigned long long suffix = own; // weight of bins >= 8L
#pragma unroll
            for (int offset = 1; offset < WARP_SIZE; offset <<= 1)
            {
                const unsigned long long n = __shfl_down_sync(FULL_MASK, suffix, offset);
                if (lane + offset < WARP_SIZE)
                {
                    suffix += n;
                }
            }
            const unsigned long long total = above + __shfl_sync(FULL_MASK, suffix, 0);
            const unsigned long long before = above + suffix - own; // weight ranked before this lane's bins
            __syncwarp(); // every lane has read sh.above before the crossing lane overwrites it
            if (before < need && need <= before + own)
            {
                unsigned long long run = before;
                for (int b = 7; b >= 0; b--)
                {
                    const unsigned long long h = sh.hist[8 * lane + b];
                    if (need <= run + h)
                    {
                        sh.above = run;
                        sh.tieWeight = h;
                        sh.prefix = prefix | ((unsigned int)(8 * lane + b) << shift);
                        break;
                    }
                    run += h;
                }
            }
            if (lane == 0 && total < need)
            {
                sh.failed = 1;
            }
        }
        __syncthreads();
        if (sh.failed)
        {
            return cut;
        }
        mask |= 0xffu << shift;
    }

    // sh.prefix is now the full key K of the element reached; the members tied at K weigh w each (same logit).
    const unsigned int key = sh.prefix;
    const unsigned long long w = weights.of(key_to_float(key));
    const unsigned long long ties = w > 0 ? sh.tieWeight / w : 1ull;
    unsigned long long m = w > 0 ? (need - sh.above + w - 1) / w : 1ull;
    m = m < 1 ? 1 : (m > ties ? ties : m);
    Cut result;
    result.key = key;
    result.id = find_mth_tie(logits, vocab, key, m, sh);
    return result;
}
