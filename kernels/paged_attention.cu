// Paged attention: decode over KV splits (FlashDecoding / "paged attention v2"), the log-sum-exp merge of the
// splits, and causal attention for prefill chunks. K/V are read through each sequence's block table.
//
// Cache layout: kCache, vCache: (blocks, blockSize, kvHeads, headDim) T; slot = block * blockSize + offset.
// GQA: query head h reads KV head h / (heads / kvHeads), so the `group` = heads / kvHeads query heads of one KV head
// are consecutive and one thread block serves them all, loading each K/V row once for the whole group.
//
// Inside a block (PA_THREADS = 128 threads = 4 warps): warp w takes tokens begin+w, begin+w+4, ... Each lane owns
// the element pairs (2*lane + 64*j, +1), j < ceil(headDim / 64), so a warp reads a K or V row as 32-bit words,
// coalesced. The dot products for the group are reduced with shuffles, and each warp keeps an online softmax
// (running max m, running sum l, unnormalised accumulator) per head in registers. At the end the four warps are
// combined through shared memory. Scores are kept in base 2 (q pre-multiplied by scale * log2(e)) so each
// exponential is one ex2; the maxima written out are converted back to natural-log units.
//
// Limits (checked on the host): headDim even and <= 256; heads a multiple of kvHeads.
#include "common.cuh"

#define PA_THREADS 128
#define PA_WARPS (PA_THREADS / WARP_SIZE)
#define PA_GROUP 8     // query heads handled per pass over the tokens; larger groups take several passes
#define PA_MAX_PAIRS 4 // element pairs per lane: headDim <= 2 * 32 * 4 = 256
#define PA_MIN_BLOCKS 4 // blocks per SM the register budget must allow (caps registers at 128 per thread)

// Dynamic shared memory (floats) for a pass of gChunk = min(group, PA_GROUP) heads:
//   q      (gChunk, headDim)            the group's queries, scaled into base-2 units
//   acc    (PA_WARPS, gChunk, headDim)  each warp's unnormalised output
//   m, l   (PA_WARPS, gChunk) each      each warp's running max and sum
// The host computes the same size (PagedAttentionPlan.SharedMemoryBytes).

// Where a finished head goes: decode writes F32 partials for the merge, prefill writes the final T row.
struct DecodeSink
{
    float* out; // (headDim) of (seq, head, split) for head h0; consecutive heads are numSplits * headDim apart
    float* max; // partialMax at (seq, h0, split); consecutive heads are numSplits apart
    float* sum;
    int headStride;
    int statStride;

    __device__ __forceinline__ void value(int g, int e, float v) const { out[(long long)g * headStride + e] = v; }
    __device__ __forceinline__ void stats(int g, float m, float l) const
    {
        max[(long long)g * statStride] = m;
        sum[(long long)g * statStride] = l;
    }
};

template <typename Fmt>
struct PrefillSink
{
    unsigned short* out; // (headDim) of (token, h0); consecutive heads are headDim apart
    int headStride;

    __device__ __forceinline__ void value(int g, int e, float v) const { out[(long long)g * headStride + e] = Fmt::store(v); }
    __device__ __forceinline__ void stats(int, float, float) const {}
};

__device__ __forceinline__ int pa_chunk(int group) { return group < PA_GROUP ? group : PA_GROUP; }

// Attention of the group's query heads over tokens [begin, end) of one sequence, for one KV head.
// q: (group, headDim) F32 of this row and KV head; blockTable: this sequence's row. Writes normalised outputs and
// (natural-log) max / sum per head through the sink. Every thread of the block must call it.
template <typename Fmt, typename Sink>
__device__ __forceinline__ void attend(const float* __restrict__ q, const unsigned short* __restrict__ kCache,
                                       const unsigned short* __restrict__ vCache, const int* __restrict__ blockTable,
                                       int blockSize, int kvHeads, int kvHead, int headDim, int group, int begin,
                                       int end, float scale, Sink sink, int sinkHeadOffset)
{
    extern __shared__ float smem[];
    const int lane = threadIdx.x & (WARP_SIZE - 1);
    const int warp = threadIdx.x >> 5;
    const int gChunk = pa_chunk(group);
    float* qs = smem;
    float* accs = qs + gChunk * headDim;
    float* ms = accs + PA_WARPS * gChunk * headDim;
    float* ls = ms + PA_WARPS * gChunk;
    const float qScale = scale * LOG2E_F32;
    const long long rowStride = (long long)kvHeads * headDim; // elements between consecutive slots

    for (int h0 = 0; h0 < group; h0 += gChunk)
    {
        const int gCount = min(gChunk, group - h0);
        __syncthreads(); // the previous pass may still read shared memory
        for (int i = threadIdx.x; i < gCount * headDim; i += blockDim.x)
        {
            qs[i] = q[(long long)h0 * headDim + i] * qScale;
        }
        __syncthreads();

        float acc[PA_GROUP][2 * PA_MAX_PAIRS];
        float m[PA_GROUP];
        float l[PA_GROUP];
#pragma unroll
        for (int g = 0; g < PA_GROUP; g++)
        {
            m[g] = NEG_INF_F32;
            l[g] = 0.0f;
#pragma unroll
            for (int j = 0; j < 2 * PA_MAX_PAIRS; j++)
            {
                acc[g][j] = 0.0f;
            }
        }

        for (int t = begin + warp; t < end; t += PA_WARPS)
        {
            const int physical = blockTable[t / blockSize];
            const long long row = ((long long)physical * blockSize + (t % blockSize)) * rowStride + (long long)kvHead * headDim;
            float2 kv[PA_MAX_PAIRS];
            float2 vv[PA_MAX_PAIRS];
#pragma unroll
            for (int j = 0; j < PA_MAX_PAIRS; j++)
            {
                const int e = 2 * lane + 2 * WARP_SIZE * j;
                const bool live = e < headDim;
                kv[j] = live ? load_pair<Fmt>(kCache + row + e) : make_float2(0.0f, 0.0f);
                vv[j] = live ? load_pair<Fmt>(vCache + row + e) : make_float2(0.0f, 0.0f);
            }

#pragma unroll
            for (int g = 0; g < PA_GROUP; g++)
            {
                if (g < gCount) // uniform across the block
                {
                    // q stays in shared memory (a broadcast-free float2 per lane): holding it in registers as
                    // well as the accumulators would cost occupancy
                    float s = 0.0f;
#pragma unroll
                    for (int j = 0; j < PA_MAX_PAIRS; j++)
                    {
                        const int e = 2 * lane + 2 * WARP_SIZE * j;
                        if (e < headDim)
                        {
                            const float2 qv = *reinterpret_cast<const float2*>(qs + g * headDim + e);
                            s = fmaf(qv.x, kv[j].x, s);
                            s = fmaf(qv.y, kv[j].y, s);
                        }
                    }
                    s = warp_sum(s);

                    const float mNew = fmaxf(m[g], s);
                    const float correction = exp2f(m[g] - mNew); // 0 on the first token (m = -inf)
                    const float p = exp2f(s - mNew);
                    l[g] = fmaf(l[g], correction, p);
                    m[g] = mNew;
#pragma unroll
                    for (int j = 0; j < PA_MAX_PAIRS; j++)
                    {
                        acc[g][2 * j] = fmaf(acc[g][2 * j], correction, p * vv[j].x);
                        acc[g][2 * j + 1] = fmaf(acc[g][2 * j + 1], correction, p * vv[j].y);
                    }
                }
            }
        }

        // publish this warp's state
#pragma unroll
        for (int g = 0; g < PA_GROUP; g++)
        {
            if (g < gCount)
            {
                if (lane == 0)
                {
                    ms[warp * gChunk + g] = m[g];
                    ls[warp * gChunk + g] = l[g];
                }
#pragma unroll
                for (int j = 0; j < PA_MAX_PAIRS; j++)
                {
                    const int e = 2 * lane + 2 * WARP_SIZE * j;
                    if (e < headDim)
                    {
                        float* dst = accs + (warp * gChunk + g) * headDim + e;
                        dst[0] = acc[g][2 * j];
                        dst[1] = acc[g][2 * j + 1];
                    }
                }
            }
        }
        __syncthreads();

        // combine the warps: o = sum_w 2^(m_w - M) acc_w / sum_w 2^(m_w - M) l_w
        for (int i = threadIdx.x; i < gCount * headDim; i += blockDim.x)
        {
            const int g = i / headDim;
            const int e = i - g * headDim;
            float mMax = NEG_INF_F32;
#pragma unroll
            for (int w = 0; w < PA_WARPS; w++)
            {
                mMax = fmaxf(mMax, ms[w * gChunk + g]);
            }

            float total = 0.0f;
            float o = 0.0f;
            if (mMax != NEG_INF_F32) // else no token in range: output 0, sum 0, max -inf
            {
#pragma unroll
                for (int w = 0; w < PA_WARPS; w++)
                {
                    const float f = exp2f(ms[w * gChunk + g] - mMax);
                    total = fmaf(ls[w * gChunk + g], f, total);
                    o = fmaf(accs[(w * gChunk + g) * headDim + e], f, o);
                }
                o /= total;
            }

            sink.value(sinkHeadOffset + h0 + g, e, o);
            if (e == 0)
            {
                sink.stats(sinkHeadOffset + h0 + g, mMax == NEG_INF_F32 ? NEG_INF_F32 : mMax * LN2_F32, total);
            }
        }
    }
}

// partialOut: (seqs, heads, numSplits, headDim) F32, each split's output normalised by its own sum;
// partialMax, partialSum: (seqs, heads, numSplits) F32: the split's max score (natural-log units, -inf when the
// split is empty) and sum of exp(score - max); q: (seqs, heads, headDim) F32; blockTables: (seqs, maxBlocks);
// contextLens: (seqs), 0 for an idle row. Split s covers tokens [s * tokensPerSplit, (s + 1) * tokensPerSplit).
// Launch: grid (seqs, kvHeads, numSplits), block PA_THREADS, dynamic shared PagedAttentionPlan.SharedMemoryBytes.
template <typename Fmt>
__device__ __forceinline__ void paged_attention_decode(float* partialOut, float* partialMax, float* partialSum,
                                                       const float* q, const unsigned short* kCache,
                                                       const unsigned short* vCache, const int* blockTables,
                                                       const int* contextLens, int maxBlocks, int blockSize,
                                                       int heads, int kvHeads, int headDim, int numSplits,
                                                       int tokensPerSplit, float scale)
{
    const int seq = blockIdx.x;
    const int kvHead = blockIdx.y;
    const int split = blockIdx.z;
    const int group = heads / kvHeads;
    const int contextLength = contextLens[seq];
    const int begin = split * tokensPerSplit;
    const int end = min(contextLength, begin + tokensPerSplit);
    const int firstHead = kvHead * group;

    DecodeSink sink;
    const long long stat = ((long long)seq * heads + firstHead) * numSplits + split;
    sink.out = partialOut + stat * headDim;
    sink.max = partialMax + stat;
    sink.sum = partialSum + stat;
    sink.headStride = numSplits * headDim;
    sink.statStride = numSplits;
    attend<Fmt>(q + ((long long)seq * heads + firstHead) * headDim, kCache, vCache,
                blockTables + (long long)seq * maxBlocks, blockSize, kvHeads, kvHead, headDim, group, begin, end,
                scale, sink, 0);
}

extern "C" __global__ void __launch_bounds__(PA_THREADS, PA_MIN_BLOCKS) paged_attention_decode_f16(
    float* partialOut, float* partialMax, float* partialSum, const float* q, const f16_t* kCache,
    const f16_t* vCache, const int* blockTables, const int* contextLens, int maxBlocks, int blockSize, int heads,
    int kvHeads, int headDim, int numSplits, int tokensPerSplit, float scale)
{
    paged_attention_decode<F16>(partialOut, partialMax, partialSum, q, kCache, vCache, blockTables, contextLens,
                                maxBlocks, blockSize, heads, kvHeads, headDim, numSplits, tokensPerSplit, scale);
}

extern "C" __global__ void __launch_bounds__(PA_THREADS, PA_MIN_BLOCKS) paged_attention_decode_bf16(
    float* partialOut, float* partialMax, float* partialSum, const float* q, const bf16_t* kCache,
    const bf16_t* vCache, const int* blockTables, const int* contextLens, int maxBlocks, int blockSize, int heads,
    int kvHeads, int headDim, int numSplits, int tokensPerSplit, float scale)
{
    paged_attention_decode<BF16>(partialOut, partialMax, partialSum, q, kCache, vCache, blockTables, contextLens,
                                 maxBlocks, blockSize, heads, kvHeads, headDim, numSplits, tokensPerSplit, scale);
}

#include "paged_attention_merge.cuh"
#include "paged_attention_prefill.cuh"
