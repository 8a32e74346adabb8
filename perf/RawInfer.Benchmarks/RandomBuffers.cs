using System.Runtime.InteropServices;

namespace RawInfer.Benchmarks;

/// <summary>64-byte-aligned native float buffers filled with seeded values in [-0.5, 0.5), freed with
/// <see cref="NativeMemory.AlignedFree"/>.</summary>
internal static unsafe class RandomBuffers
{
    public static float* Floats(long count, int seed)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        var random = new Random(seed);
        for (long i = 0; i < count; i++)
        {
            p[i] = (float)(random.NextDouble() - 0.5);
        }

        return p;
    }
}
