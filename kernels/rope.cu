// Rotary position embedding, llama2.c layout: adjacent pairs (2i, 2i+1) of each head rotate by
// angle = position * theta^(-2i/headDim).
#include "common.cuh"

// q: (n, heads, headDim) F32, rotated in place; k: (n, kvHeads, headDim) F32, rotated in place; positions: (n).
// Launch: one thread per pair, 1-D grid of ceil(n * (heads + kvHeads) * headDim/2 / 256) blocks of 256.
// The frequency is 1 / powf(theta, 2i / headDim) in F32 and the rotation is rounded step by step (no fused
// multiply-add), as the CPU backend computes it; sin and cos use the accurate (range-reduced) functions because
// angles grow with the position.
extern "C" __global__ void rope_f32(float* q, float* k, const int* positions, int n, int heads, int kvHeads,
                                   int headDim, float theta)
{
    const int half = headDim >> 1;
    const long long pairsPerToken = (long long)(heads + kvHeads) * half;
    const long long total = (long long)n * pairsPerToken;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x)
    {
        const int token = (int)(idx / pairsPerToken);
        const int rest = (int)(idx - (long long)token * pairsPerToken);
        const int head = rest / half;
        const int i = rest - head * half;
        float* v = head < heads
                       ? q + ((long long)token * heads + head) * headDim
                       : k + ((long long)token * kvHeads + (head - heads)) * headDim;

        const float inverseFrequency = 1.0f / powf(theta, (float)(2 * i) / (float)headDim);
        const float angle = (float)positions[token] * inverseFrequency;
        float s;
        float c;
        sincosf(angle, &s, &c);
        const float v0 = v[2 * i];
        const float v1 = v[2 * i + 1];
        v[2 * i] = __fadd_rn(__fmul_rn(v0, c), -__fmul_rn(v1, s));
        v[2 * i + 1] = __fadd_rn(__fmul_rn(v1, c), __fmul_rn(v0, s));
    }
}
