// Shared helpers for every kernel: 16-bit storage types, conversions, warp and block reductions.
//
// NVRTC compiles these files without the CUDA toolkit headers (none are shipped with Debian's NVRTC, and none are
// needed): F16 and BF16 are plain 16-bit words here, converted with one PTX instruction (F16) or bit arithmetic
// (BF16, round-to-nearest-even as torch and .NET do). All arithmetic happens in F32.
#pragma once

typedef unsigned short f16_t;  // IEEE 754 binary16 bits
typedef unsigned short bf16_t; // bfloat16 bits: the upper half of an F32

#define NEG_INF_F32 __int_as_float(0xff800000)
#define WARP_SIZE 32
#define FULL_MASK 0xffffffffu

// log2(e): scores are kept in base 2 inside attention so the exponential is one ex2 instruction.
#define LOG2E_F32 1.4426950408889634f
#define LN2_F32 0.6931471805599453f

__device__ __forceinline__ float f16_to_f32(f16_t h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ f16_t f32_to_f16(float f)
{
    f16_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float bf16_to_f32(bf16_t h)
{
    return __uint_as_float(((unsigned int)h) << 16);
}

__device__ __forceinline__ bf16_t f32_to_bf16(float f)
{
    unsigned int bits = __float_as_uint(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
    {
        return (bf16_t)((bits >> 16) | 0x0040u); // NaN stays NaN (quiet), sign kept
    }

    // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate. Overflow carries into
    // the exponent and gives infinity, as it should.
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (bf16_t)(bits >> 16);
}

// Storage traits: kernels are templates over the 16-bit format and exported once per format with extern "C".
struct F16
{
    __device__ __forceinline__ static float load(f16_t h) { return f16_to_f32(h); }
    __device__ __forceinline__ static f16_t store(float f) { return f32_to_f16(f); }
};

struct BF16
{
    __device__ __forceinline__ static float load(bf16_t h) { return bf16_to_f32(h); }
    __device__ __forceinline__ static bf16_t store(float f) { return f32_to_bf16(f); }
};

// Two adjacent 16-bit values read as one 32-bit word (the caller guarantees 4-byte alignment).
template <typename Fmt>
__device__ __forceinline__ float2 load_pair(const unsigned short* p)
{
    unsigned int w = *reinterpret_cast<const unsigned int*>(p);
    return make_float2(Fmt::load((unsigned short)(w & 0xffffu)), Fmt::load((unsigned short)(w >> 16)));
}

template <typename Fmt>
__device__ __forceinline__ void store_pair(unsigned short* p, float a, float b)
{
    unsigned int w = (unsigned int)Fmt::store(a) | ((unsigned int)Fmt::store(b) << 16);
    *reinterpret_cast<unsigned int*>(p) = w;
}

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
    {
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
#pragma unroll
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
    {
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    }
    return v;
}

__device__ __forceinline__ double warp_sum_f64(double v)
{
#pragma unroll
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
    {
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    }
    return v;
}

__device__ __forceinline__ unsigned long long warp_sum_u64(unsigned long long v)
{
#pragma unroll
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
    {
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    }
    return v;
}

// Block-wide sum; every thread gets the result. scratch: at least 32 floats of shared memory. The order of the
// additions depends only on blockDim, so results are reproducible run to run.
__device__ __forceinline__ float block_sum(float v, float* scratch)
{
    const int lane = threadIdx.x & (WARP_SIZE - 1);
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + WARP_SIZE - 1) >> 5;
    v = warp_sum(v);
    __syncthreads(); // scratch may still be read by a previous call
    if (lane == 0)
    {
        scratch[warp] = v;
    }
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch)
{
    const int lane = threadIdx.x & (WARP_SIZE - 1);
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + WARP_SIZE - 1) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0)
    {
        scratch[warp] = v;
    }
    __syncthreads();
    v = lane < warps ? scratch[lane] : NEG_INF_F32;
    return warp_max(v);
}

__device__ __forceinline__ double block_sum_f64(double v, double* scratch)
{
    const int lane = threadIdx.x & (WARP_SIZE - 1);
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + WARP_SIZE - 1) >> 5;
    v = warp_sum_f64(v);
    __syncthreads();
    if (lane == 0)
    {
        scratch[warp] = v;
    }
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0;
    return warp_sum_f64(v);
}

__device__ __forceinline__ unsigned long long block_sum_u64(unsigned long long v, unsigned long long* scratch)
{
    const int lane = threadIdx.x & (WARP_SIZE - 1);
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + WARP_SIZE - 1) >> 5;
    v = warp_sum_u64(v);
    __syncthreads();
    if (lane == 0)
    {
        scratch[warp] = v;
    }
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0ull;
    return warp_sum_u64(v);
}
