using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace RawInfer.KvCache;

/// <summary>
/// Where a pinned array's first 64-byte cache line begins. An array's elements start 16 bytes into the object and the
/// pinned heap places objects on 8 bytes, so the K and V arrays are allocated <see cref="SpareBytes"/> longer and used
/// from that element on: a kernel's 64-byte loads of a row then never straddle two lines.
/// </summary>
internal static class CacheLine
{
    /// <summary>Bytes of a cache line.</summary>
    public const int Bytes = 64;

    /// <summary>Bytes an array is allocated beyond its use, so that its start can move to the next line.</summary>
    public const int SpareBytes = Bytes;

    /// <summary>The index of the first element of pinned <paramref name="array"/> on a cache line.</summary>
    public static unsafe int StartIndex(Array array, int elementBytes)
    {
        var first = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (int)(-first & (Bytes - 1)) / elementBytes;
    }
}
