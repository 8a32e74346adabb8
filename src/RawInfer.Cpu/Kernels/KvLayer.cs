using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.KvCache;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// One layer's keys (or values) as the attention kernels read them: (slots, kvDim) elements of the cache's type
/// from a base pointer that stays fixed while the kernel runs. The kernels do their arithmetic in float32 on a
/// block's rows of one head: a float32 cache hands out its rows where they lie, a half or bfloat16 cache converts
/// them (exactly) into the caller's scratch first, so it gives the bits a float32 cache holding the same rounded
/// values would.
/// </summary>
internal readonly unsafe struct KvLayer
{
    private readonly void* _data;
    private readonly int _kvDim;
    private readonly KvCacheType _type;

    public KvLayer(float* data, int kvDim)
        : this(data, kvDim, KvCacheType.F32)
    {
    }

    public KvLayer(Half* data, int kvDim)
        : this(data, kvDim, KvCacheType.F16)
    {
    }

    /// <summary>A bfloat16 layer: <paramref name="data"/> holds the bit patterns.</summary>
    public static KvLayer BFloat16(ushort* data, int kvDim) => new(data, kvDim, KvCacheType.BF16);

    private KvLayer(void* data, int kvDim, KvCacheType type)
    {
        _data = data;
        _kvDim = kvDim;
        _type = type;
    }

    /// <summary>The element type.</summary>
    public KvCacheType Type => _type;

    /// <summary>
    /// The first of the rows from <paramref name="slot"/> of the head at <paramref name="headOffset"/>, in the
    /// cache's own element type, and the bytes from one row to the next.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* RawRows(long slot, int headOffset, out long strideBytes)
    {
        var size = _type.ElementBytes();
        strideBytes = (long)_kvDim * size;
        return (byte*)_data + (((slot * _kvDim) + headOffset) * size);
    }

    /// <summary>
    /// Rows [slot, slot + count) of the head at <paramref name="headOffset"/> as float32: where they lie (row
    /// stride kvDim) or converted into <paramref name="scratch"/> (count × headDim, row stride headDim).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* HeadRows(long slot, int count, int headOffset, int headDim, float* scratch, out int stride)
    {
        if (_type == KvCacheType.F32)
        {
            stride = _kvDim;
            return (float*)_data + (slot * _kvDim) + headOffset;
        }

        Debug.Assert(scratch != null);
        var source = (ushort*)_data + (slot * _kvDim) + headOffset;
        if (_type == KvCacheType.F16)
        {
            ConvertRows(source, _kvDim, count, headDim, scratch);
        }
        else
        {
            WidenRows(source, _kvDim, count, headDim, scratch);
        }

        stride = headDim;
        return scratch;
    }

    /// <summary>count rows of headDim bfloat16s (row stride kvDim) → float32 rows of stride headDim: a shift each.</summary>
    private static void WidenRows(ushort* source, int kvDim, int count, int headDim, float* destination)
    {
        const int N = 16; // Vector512<float>.Count
        var vectorEnd = Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? headDim & ~(N - 1) : 0;
        for (var i = 0; i < count; i++, source += kvDim, destination += headDim)
        {
            var c = 0;
            for (; c < vectorEnd; c += N)
            {
                var widened = Avx512F.ConvertToVector512UInt32(Vector256.Load(source + c)); // VPMOVZXWD
                (widened << 16).AsSingle().Store(destination + c);
            }

            for (; c < headDim; c++)
            {
                destination[c] = HalfConversion.BFloat16ToSingle(source[c]);
            }
        }
    }

    /// <summary>
    /// count rows of headDim halves (row stride kvDim) → float32 rows of stride headDim. Heads a multiple of 16
    /// wide convert 16 at a time inline (one widening load and the exact conversion each): attention converts
    /// every cached element once per step, so a call per row would cost more than the conversion.
    /// </summary>
    private static void ConvertRows(ushort* source, int kvDim, int count, int headDim, float* destination)
    {
        const int N = 16; // Vector512<float>.Count
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported && headDim % N == 0)
        {
            for (var i = 0; i < count; i++, source += kvDim, destination += headDim)
            {
                for (var c = 0; c < headDim; c += N)
                {
                    var h = Avx512F.ConvertToVector512Int32(Vector256.Load((short*)source + c)); // VPMOVSXWD
                    HalfConversion.SignExtendedHalfToSingle(h).Store(destination + c);
                }
            }

            return;
        }

        for (var i = 0; i < count; i++)
        {
            HalfConversion.HalvesToSingles(source + ((long)i * kvDim), destination + ((long)i * headDim), headDim);
        }
    }
}
