// SwiGLU gating into the 16-bit input of the down projection: out = silu(gate) * up, silu(x) = x / (1 + e^-x).
#include "common.cuh"

// out: (count) T; gate, up: (count) F32 (count = n * hidden, row-major).
// Launch: 1-D grid of ceil(count / 256) blocks of 256 (grid-stride, so fewer blocks also work).
template <typename Fmt>
__device__ __forceinline__ void swiglu(unsigned short* __restrict__ out, const float* __restrict__ gate,
                                       const float* __restrict__ up, int count)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x)
    {
        const float g = gate[i];
        out[i] = Fmt::store(g / (1.0f + expf(-g)) * up[i]);
    }
}

extern "C" __global__ void swiglu_f16(f16_t* out, const float* gate, const float* up, int count)
{
    swiglu<F16>(out, gate, up, count);
}

extern "C" __global__ void swiglu_bf16(bf16_t* out, const float* gate, const float* up, int count)
{
    swiglu<BF16>(out, gate, up, count);
}
