// K/V write through the slot mapping: token i's key and value rows go to cache slot slotMapping[i].
#include "common.cuh"

// kCache, vCache: (blocks, blockSize, kvHeads, headDim) T, so slot s = block * blockSize + offset is row s of a
// (slots, kvDim) matrix; k, v: (n, kvDim) F32; slotMapping: (n), a negative slot skips the token (padding).
// Launch: grid (n), block 128; kvDim = kvHeads * headDim.
template <typename Fmt>
__device__ __forceinline__ void kv_write(unsigned short* __restrict__ kCache, unsigned short* __restrict__ vCache,
                                         const float* __restrict__ k, const float* __restrict__ v,
                                         const int* __restrict__ slotMapping, int n, int kvDim)
{
    const int token = blockIdx.x;
    if (token >= n)
    {
        return;
    }

    const int slot = slotMapping[token];
    if (slot < 0)
    {
        return;
    }

    const float* kr = k + (long long)token * kvDim;
    const float* vr = v + (long long)token * kvDim;
    unsigned short* kd = kCache + (long long)slot * kvDim;
    unsigned short* vd = vCache + (long long)slot * kvDim;
    for (int i = threadIdx.x; i < kvDim; i += blockDim.x)
    {
        kd[i] = Fmt::store(kr[i]);
        vd[i] = Fmt::store(vr[i]);
    }
}

extern "C" __global__ void kv_write_f16(f16_t* kCache, f16_t* vCache, const float* k, const float* v,
                                       const int* slotMapping, int n, int kvDim)
{
    kv_write<F16>(kCache, vCache, k, v, slotMapping, n, kvDim);
}

extern "C" __global__ void kv_write_bf16(bf16_t* kCache, bf16_t* vCache, const float* k, const float* v,
                                        const int* slotMapping, int n, int kvDim)
{
    kv_write<BF16>(kCache, vCache, k, v, slotMapping, n, kvDim);
}
