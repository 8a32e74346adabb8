// Log-sum-exp merge of the decode splits (part of paged_attention.cu; included there).
//
// With per-split maxima m_s, sums l_s and normalised outputs o_s, and M = max_s m_s:
//   out = sum_s exp(m_s - M) * l_s * o_s / sum_s exp(m_s - M) * l_s
// Empty splits (m_s = -inf, l_s = 0) weigh nothing; a row with no tokens at all gets zeros.
#pragma once
#include "common.cuh"

// out: (seqs, heads, headDim) T; partialOut: (seqs, heads, numSplits, headDim) F32;
// partialMax, partialSum: (seqs, heads, numSplits) F32.
// Launch: grid (seqs, heads), block 128 (threads loop over headDim; each recomputes the few split weights).
template <typename Fmt>
__device__ __forceinline__ void paged_attention_merge(unsigned short* out, const float* partialOut,
                                                      const float* partialMax, const float* partialSum, int seqs,
                                                      int heads, int headDim, int numSplits)
{
    const int seq = blockIdx.x;
    const int head = blockIdx.y;
    if (seq >= seqs || head >= heads)
    {
        return;
    }

    const long long stat = ((long long)seq * heads + head) * numSplits;
    const float* pm = partialMax + stat;
    const float* ps = partialSum + stat;
    const float* po = partialOut + stat * headDim;
    float mMax = NEG_INF_F32;
    for (int s = 0; s < numSplits; s++)
    {
        mMax = fmaxf(mMax, pm[s]);
    }

    unsigned short* dst = out + ((long long)seq * heads + head) * headDim;
    for (int e = threadIdx.x; e < headDim; e += blockDim.x)
    {
        float total = 0.0f;
        float o = 0.0f;
        if (mMax != NEG_INF_F32)
        {
            for (int s = 0; s < numSplits; s++)
            {
                const float w = ps[s] * expf(pm[s] - mMax); // exp(-inf) = 0 for empty splits
                total += w;
                o = fmaf(w, po[(long long)s * headDim + e], o);
            }
        }

        dst[e] = Fmt::store(total > 0.0f ? o / total : 0.0f);
    }
}

extern "C" __global__ void paged_attention_merge_f16(f16_t* out, const float* partialOut, const float* partialMax,
                                                    const float* partialSum, int seqs, int heads, int headDim,
                                                    int numSplits)
{
    paged_attention_merge<F16>(out, partialOut, partialMax, partialSum, seqs, heads, headDim, numSplits);
}

extern "C" __global__ void paged_attention_merge_bf16(bf16_t* out, const float* partialOut, const float* partialMax,
                                                     const float* partialSum, int seqs, int heads, int headDim,
                                                     int numSplits)
{
    paged_attention_merge<BF16>(out, partialOut, partialMax, partialSum, seqs, heads, headDim, numSplits);
}
