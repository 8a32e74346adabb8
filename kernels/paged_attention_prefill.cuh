// Causal attention for prefill chunks (part of paged_attention.cu; included there, after attend()).
//
// The chunk's tokens of all sequences are packed: sequence s owns rows [queryStart[s], queryStart[s+1]). Row r
// attends to positions 0..positions[r] of its sequence through the block table; the chunk's own K/V must already be
// in the cache (kv_write runs first). One thread block per (row, KV head) runs the decode body over the whole
// causal range in one split, so a row's result does not depend on the chunking.
#pragma once
#include "common.cuh"

// out: (tokens, heads, headDim) T; q: (tokens, heads, headDim) F32; blockTables: (numSeqs, maxBlocks);
// queryStart: (numSeqs + 1), ascending, queryStart[numSeqs] = tokens; positions: (tokens).
// Launch: grid (tokens, kvHeads), block PA_THREADS, dynamic shared PagedAttentionPlan.SharedMemoryBytes.
template <typename Fmt>
__device__ __forceinline__ void paged_attention_prefill(unsigned short* out, const float* q,
                                                        const unsigned short* kCache, const unsigned short* vCache,
                                                        const int* blockTables, const int* queryStart,
                                                        const int* positions, int numSeqs, int maxBlocks,
                                                        int blockSize, int heads, int kvHeads, int headDim,
                                                        float scale)
{
    const int row = blockIdx.x;
    const int kvHead = blockIdx.y;
    if (row >= queryStart[numSeqs])
    {
        return; // the grid may be sized for more rows than this chunk holds
    }

    // the sequence of this row: the last s with queryStart[s] <= row
    int lo = 0;
    int hi = numSeqs - 1;
    while (lo < hi)
    {
        const int mid = (lo + hi + 1) >> 1;
        if (queryStart[mid] <= row)
        {
            lo = mid;
        }
        else
        {
            hi = mid - 1;
        }
    }

    const int group = heads / kvHeads;
    const int firstHead = kvHead * group;
    PrefillSink<Fmt> sink;
    sink.out = out + ((long long)row * heads + firstHead) * headDim;
    sink.headStride = headDim;
    attend<Fmt>(q + ((long long)row * heads + firstHead) * headDim, kCache, vCache,
                blockTables + (long long)lo * maxBlocks, blockSize, kvHeads, kvHead, headDim, group, 0,
                positions[row] + 1, scale, sink, 0);
}

extern "C" __global__ void __launch_bounds__(PA_THREADS, PA_MIN_BLOCKS) paged_attention_prefill_f16(
    f16_t* out, const float* q, const f16_t* kCache, const f16_t* vCache, const int* blockTables,
    const int* queryStart, const int* positions, int numSeqs, int maxBlocks, int blockSize, int heads, int kvHeads,
    int headDim, float scale)
{
    paged_attention_prefill<F16>(out, q, kCache, vCache, blockTables, queryStart, positions, numSeqs, maxBlocks,
                                 blockSize, heads, kvHeads, headDim, scale);
}

extern "C" __global__ void __launch_bounds__(PA_THREADS, PA_MIN_BLOCKS) paged_attention_prefill_bf16(
    bf16_t* out, const float* q, const bf16_t* kCache, const bf16_t* vCache, const int* blockTables,
    const int* queryStart, const int* positions, int numSeqs, int maxBlocks, int blockSize, int heads, int kvHeads,
    int headDim, float scale)
{
    paged_attention_prefill<BF16>(out, q, kCache, vCache, blockTables, queryStart, positions, numSeqs, maxBlocks,
                                  blockSize, heads, kvHeads, headDim, scale);
}
