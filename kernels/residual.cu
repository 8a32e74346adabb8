// Element-wise F32 helpers: the residual add and narrowing to 16-bit storage.
#include "common.cuh"

// x += delta; x, delta: (count) F32.
// Launch: 1-D grid of ceil(count / 256) blocks of 256 (grid-stride).
extern "C" __global__ void residual_add_f32(float* x, const float* delta, int count)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x)
    {
        x[i] += delta[i];
    }
}

// out: (count) T = round-to-nearest-even(in); in: (count) F32. Launch as residual_add_f32.
extern "C" __global__ void convert_f32_to_f16(f16_t* out, const float* in, int count)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x)
    {
        out[i] = f32_to_f16(in[i]);
    }
}

extern "C" __global__ void convert_f32_to_bf16(bf16_t* out, const float* in, int count)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x)
    {
        out[i] = f32_to_bf16(in[i]);
    }
}
