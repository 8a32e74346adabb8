using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RawInfer.KvCache;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// Pinned arrays used from their first 64-byte cache line on. An array's elements start 16 bytes into the object and
/// the pinned heap places objects on 8 bytes, so without this a kernel's 64-byte loads from a buffer (the widened W
/// tile of a batched F16 product, the runner's X rows) straddled two lines or not depending on where the heap put
/// it. Measured on the 110m model, 2 threads, Zen 5 VM (<c>step-ab</c> step medians, old build against new,
/// 2026-12-07): see the README's "Buffers on cache lines".
/// </summary>
internal static unsafe class LineAligned
{
    /// <summary>Bytes of a cache line.</summary>
    public const int LineBytes = CacheLine.Bytes;

    /// <summary>A pinned, zeroed array with room for <paramref name="length"/> elements from its first cache line on.</summary>
    public static T[] Allocate<T>(int length)
        where T : unmanaged => GC.AllocateArray<T>(checked(length + Pad<T>()), pinned: true);

    /// <summary>
    /// A thread's scratch array with room for at least <paramref name="length"/> elements from its first cache line
    /// on, grown (pinned, not zeroed) only when too small.
    /// </summary>
    public static T[] Scratch<T>(ref T[]? array, int length)
        where T : unmanaged
    {
        if (!Holds(array, length))
        {
            array = GC.AllocateUninitializedArray<T>(checked(length + Pad<T>()), pinned: true);
        }

        return array;
    }

    /// <summary>True when <paramref name="array"/> has room for <paramref name="length"/> elements from its first cache line on.</summary>
    public static bool Holds<T>([NotNullWhen(true)] T[]? array, int length)
        where T : unmanaged => array is not null && array.Length - Pad<T>() >= length;

    /// <summary>The first element on a cache line of a pinned array from <see cref="Allocate"/> or <see cref="Scratch"/>.</summary>
    public static T* Start<T>(T[] array)
        where T : unmanaged
    {
        return (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array)) + CacheLine.StartIndex(array, sizeof(T));
    }

    /// <summary><paramref name="length"/> elements from <see cref="Start"/>.</summary>
    public static Span<T> Span<T>(T[] array, int length)
        where T : unmanaged => new(Start(array), length);

    /// <summary>Elements allocated beyond the length asked for: enough to move the start to the next line.</summary>
    private static int Pad<T>()
        where T : unmanaged => (LineBytes + sizeof(T) - 1) / sizeof(T);
}

/// <summary>A pinned float buffer of a fixed length whose first element sits on a cache line (<see cref="LineAligned"/>).</summary>
internal sealed unsafe class AlignedFloats
{
    private readonly float[] _array;

    public AlignedFloats(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _array = LineAligned.Allocate<float>(length);
        Pointer = LineAligned.Start(_array);
        Length = length;
    }

    /// <summary>An empty buffer (before the first allocation).</summary>
    public static AlignedFloats Empty { get; } = new(0);

    /// <summary>The first element, on a cache line; valid for the buffer's lifetime (the array is pinned).</summary>
    public float* Pointer { get; }

    public int Length { get; }

    /// <summary>Element <paramref name="index"/>, checked against the buffer's length.</summary>
    public ref float this[int index] => ref AsSpan()[index];

    /// <summary>The whole buffer as a span (also what the implicit conversions give, so kernels take it as is).</summary>
    public Span<float> AsSpan() => new(Pointer, Length);

    public static implicit operator Span<float>(AlignedFloats buffer) => buffer.AsSpan();

    public static implicit operator ReadOnlySpan<float>(AlignedFloats buffer) => buffer.AsSpan();

    /// <summary>Elements [start, start + length), checked against the buffer's length.</summary>
    public Span<float> AsSpan(int start, int length) => AsSpan().Slice(start, length);
}
