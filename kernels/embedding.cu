// Embedding gather: one row of the (vocab, dim) table per token, widened to F32.
#include "common.cuh"

// out: (n, dim) F32; table: (vocab, dim) T; tokens: (n).
// Launch: grid (n), block 256 (any multiple of 32). Tokens are validated on the host; a negative id writes zeros
// rather than reading outside the table.
template <typename Fmt>
__device__ __forceinline__ void embedding_gather(float* __restrict__ out, const unsigned short* __restrict__ table,
                                                 const int* __restrict__ tokens, int n, int dim)
{
    const int row = blockIdx.x;
    if (row >= n)
    {
        return;
    }

    const int token = tokens[row];
    float* dst = out + (long long)row * dim;
    if (token < 0)
    {
        for (int i = threadIdx.x; i < dim; i += blockDim.x)
        {
            dst[i] = 0.0f;
        }
        return;
    }

    const unsigned short* src = table + (long long)token * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
    {
        dst[i] = Fmt::load(src[i]);
    }
}

extern "C" __global__ void embedding_gather_f16(float* out, const f16_t* table, const int* tokens, int n, int dim)
{
    embedding_gather<F16>(out, table, tokens, n, dim);
}

extern "C" __global__ void embedding_gather_bf16(float* out, const bf16_t* table, const int* tokens, int n, int dim)
{
    embedding_gather<BF16>(out, table, tokens, n, dim);
}
