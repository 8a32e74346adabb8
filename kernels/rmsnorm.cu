// RMSNorm into the 16-bit GEMM input: out = w * (x / sqrt(mean(x^2) + eps)), the CPU backend's (and llama2.c's)
// order of operations.
#include "common.cuh"

// out: (n, dim) T; x: (n, dim) F32; weight: (dim) F32.
// Launch: grid (n), one block per row, block 256 (a multiple of 32, at most 1024).
template <typename Fmt>
__device__ __forceinline__ void rmsnorm(unsigned short* __restrict__ out, const float* __restrict__ x,
                                        const float* __restrict__ weight, int n, int dim, float eps)
{
    __shared__ float scratch[WARP_SIZE];
    const int row = blockIdx.x;
    if (row >= n)
    {
        return;
    }

    const float* xr = x + (long long)row * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
    {
        const float v = xr[i];
        ss += v * v;
    }

    ss = block_sum(ss, scratch);
    const float scale = 1.0f / sqrtf(ss / (float)dim + eps);
    unsigned short* orow = out + (long long)row * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
    {
        orow[i] = Fmt::store(weight[i] * (scale * xr[i]));
    }
}

extern "C" __global__ void rmsnorm_f16(f16_t* out, const float* x, const float* weight, int n, int dim, float eps)
{
    rmsnorm<F16>(out, x, weight, n, dim, eps);
}

extern "C" __global__ void rmsnorm_bf16(bf16_t* out, const float* x, const float* weight, int n, int dim, float eps)
{
    rmsnorm<BF16>(out, x, weight, n, dim, eps);
}
