// Token selection on the device: greedy argmax, and temperature + top-k + top-p sampling with one uniform random
// number per row, both one thread block per row.
//
// Sampling follows the CPU sampler (RawInfer.Engine.Sampling.Sampler) step by step:
//   1. temperature <= 0: greedy, the argmax below.
//   2. top-k (0 < k < vocab): the k best logits, ties to the lower token id. Found by a radix select over
//      order-preserving 32-bit keys (count weights), giving a cut (key, id) in candidate order.
//   3. softmax over the survivors: p = exp((l - max) * (1/T)) in F32, normalised by 1 / (double sum) rounded to F32.
//   4. top-p (p < 1): the shortest prefix in candidate order (probability descending, id ascending) whose
//      cumulative probability reaches p; the same radix select with probability-mass weights.
//   5. draw: target = u * (total kept mass); the first candidate whose cumulative mass exceeds target, walking in
//      candidate order when step 2 or 4 ran and in token-id order otherwise (as the CPU sampler's unsorted path).
// Masses are 2^-60 fixed point (see sampling_select.cuh), so the choice is deterministic; it can differ from the
// CPU's only when u falls within about vocab * 2^-60 of a boundary between two candidates. Min-p and the
// penalties are not applied here.
#include "sampling_select.cuh"

struct ArgMaxShared
{
    float value[SAMPLE_WARPS];
    int index[SAMPLE_WARPS];
    int result;
};

__device__ __forceinline__ bool ranks_before(float v, int i, float otherValue, int otherIndex)
{
    return v > otherValue || (v == otherValue && i < otherIndex);
}

// Index of the largest logit of the row, the lowest index on ties; NaN never wins, except that a NaN at index 0
// gives 0, as the CPU's scan (which starts from index 0 and only moves on a strictly greater value) does.
__device__ __forceinline__ int block_argmax(const float* row, int vocab, ArgMaxShared& sh)
{
    const int lane = threadIdx.x & (WARP_SIZE - 1);
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + WARP_SIZE - 1) >> 5;
    float bestValue = NEG_INF_F32;
    int best = 0x7fffffff;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        const float v = row[i];
        if (!isnan(v) && ranks_before(v, i, bestValue, best))
        {
            bestValue = v;
            best = i;
        }
    }

#pragma unroll
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
    {
        const float v = __shfl_xor_sync(FULL_MASK, bestValue, offset);
        const int i = __shfl_xor_sync(FULL_MASK, best, offset);
        if (ranks_before(v, i, bestValue, best))
        {
            bestValue = v;
            best = i;
        }
    }

    __syncthreads();
    if (lane == 0)
    {
        sh.value[warp] = bestValue;
        sh.index[warp] = best;
    }
    __syncthreads();
    if (warp == 0)
    {
        bestValue = lane < warps ? sh.value[lane] : NEG_INF_F32;
        best = lane < warps ? sh.index[lane] : 0x7fffffff;
#pragma unroll
        for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
        {
            const float v = __shfl_xor_sync(FULL_MASK, bestValue, offset);
            const int i = __shfl_xor_sync(FULL_MASK, best, offset);
            if (ranks_before(v, i, bestValue, best))
            {
                bestValue = v;
                best = i;
            }
        }
        if (lane == 0)
        {
            sh.result = (best == 0x7fffffff || isnan(row[0])) ? 0 : best;
        }
    }
    __syncthreads();
    return sh.result;
}

// outTokens: (rows); logits: (rows, vocab) F32.
// Launch: grid (rows), block SAMPLE_THREADS (any multiple of 32 up to 1024 works).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) argmax_f32(int* outTokens, const float* logits, int rows,
                                                                        int vocab)
{
    __shared__ ArgMaxShared sh;
    const int row = blockIdx.x;
    if (row >= rows)
    {
        return;
    }

    const int best = block_argmax(logits + (long long)row * vocab, vocab, sh);
    if (threadIdx.x == 0)
    {
        outTokens[row] = best;
    }
}

// The first token in id order whose cumulative mass exceeds target (target < total mass of the row).
__device__ __forceinline__ int draw_in_id_order(const float* x, int vocab, Weights weights, unsigned long long target,
                                                SelectShared& sh)
{
    __syncthreads();
    if (threadIdx.x == 0)
    {
        sh.found = vocab - 1; // only reachable if rounding left target at the very top
    }
    __syncthreads();
    unsigned long long seen = 0;
    for (int base = 0; base < vocab; base += blockDim.x)
    {
        const int i = base + threadIdx.x;
        const unsigned long long own = i < vocab ? weights.of(x[i]) : 0ull;
        unsigned long long chunk;
        const unsigned long long inclusive = seen + block_scan_u64(own, &chunk, sh.scratch);
        if (own > 0 && inclusive > target && inclusive - own <= target)
        {
            sh.found = i;
        }
        seen += chunk;
        if (seen > target)
        {
            break; // uniform
        }
    }
    __syncthreads();
    return sh.found;
}

// outTokens: (rows); logits: (rows, vocab) F32; temperature, topP, uniform: (rows) F32; topK: (rows).
// Per row: temperature <= 0 is greedy; topK <= 0 or >= vocab disables top-k; topP >= 1 disables top-p;
// uniform in [0, 1) (the CPU sampler's NextDouble, narrowed).
// Launch: grid (rows), block SAMPLE_THREADS.
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sample_top_k_top_p_f32(
    int* outTokens, const float* logits, const float* temperature, const int* topK, const float* topP,
    const float* uniform, int rows, int vocab)
{
    __shared__ SelectShared sh;
    __shared__ ArgMaxShared am;
    __shared__ double sumScratch[SAMPLE_WARPS];
    const int row = blockIdx.x;
    if (row >= rows)
    {
        return;
    }

    const float* x = logits + (long long)row * vocab;
    const int best = block_argmax(x, vocab, am);
    const float t = temperature[row];
    if (!(t > 0.0f))
    {
        if (threadIdx.x == 0)
        {
            outTokens[row] = best;
        }
        return;
    }

    const int k = topK[row];
    const float p = topP[row];
    const bool useTopK = k > 0 && k < vocab;
    const bool useTopP = p < 1.0f;
    Weights weights;
    weights.maxLogit = x[best];
    weights.invTemperature = 1.0f / t;
    weights.invSum = 0.0f;
    weights.countMode = true;

    // top-k
    Cut cut;
    cut.key = 0;
    cut.id = 0x7fffffff; // everything
    if (useTopK)
    {
        cut = radix_select(x, vocab, cut, weights, (unsigned long long)k, sh);
    }

    // softmax normaliser over the survivors (double, as the CPU sums)
    double local = 0.0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        const float l = x[i];
        if (cut.contains(order_key(l), i))
        {
            local += (double)weights.unnormalised(l);
        }
    }
    const double sum = block_sum_f64(local, sumScratch);
    weights.invSum = (float)(1.0 / sum);
    weights.countMode = false;

    // top-p: a set lighter than p (rounding) keeps everything, as the CPU's nucleus loop does
    if (useTopP)
    {
        unsigned long long need = (unsigned long long)((double)p * FIXED_ONE);
        cut = radix_select(x, vocab, cut, weights, need > 0 ? need : 1ull, sh);
    }

    // draw
    unsigned long long kept = 0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    {
        const float l = x[i];
        if (cut.contains(order_key(l), i))
        {
            kept += weights.of(l);
        }
    }
    const unsigned long long total = block_sum_u64(kept, sh.scratch);
    unsigned long long target = (unsigned long long)((double)uniform[row] * (double)total);
    target = target < total ? target : total - 1;
    int token;
    if (useTopK || useTopP)
    {
        const Cut drawn = radix_select(x, vocab, cut, weights, target + 1, sh);
        token = sh.failed ? best : drawn.id;
    }
    else
    {
        token = draw_in_id_order(x, vocab, weights, target, sh);
    }

    if (threadIdx.x == 0)
    {
        outTokens[row] = token;
    }
}
