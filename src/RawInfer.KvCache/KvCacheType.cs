namespace RawInfer.KvCache;

/// <summary>The element type K and V are kept in.</summary>
public enum KvCacheType
{
    /// <summary>float32: what the forward pass computes, kept as is.</summary>
    F32,

    /// <summary>
    /// IEEE half (llama.cpp's default cache type): half the memory and half the bytes attention reads per
    /// position. Each value is rounded to nearest-even on the way in (what <c>(Half)x</c> gives; beyond ±65504
    /// that is ±Inf) and read back exactly.
    /// </summary>
    F16,

    /// <summary>
    /// bfloat16 (the top 16 bits of a float32): half the memory like <see cref="F16"/>, float32's range, 8
    /// significant bits instead of 11; rounded to nearest-even on the way in, and read back with one shift, so
    /// attention does less work per element than with either other type.
    /// </summary>
    BF16,
}

/// <summary>Sizes and names of <see cref="KvCacheType"/>.</summary>
public static class KvCacheTypes
{
    /// <summary>Bytes per element.</summary>
    public static int ElementBytes(this KvCacheType type) => type switch
    {
        KvCacheType.F32 => sizeof(float),
        KvCacheType.F16 or KvCacheType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown KV cache type"),
    };

    /// <summary>The lower-case name used on the command line and in summaries ("f32", "f16", "bf16").</summary>
    public static string Name(this KvCacheType type) => type switch
    {
        KvCacheType.F32 => "f32",
        KvCacheType.F16 => "f16",
        KvCacheType.BF16 => "bf16",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown KV cache type"),
    };

    /// <summary>Parses <see cref="Name"/>'s spelling (case-insensitive).</summary>
    public static bool TryParse(string? text, out KvCacheType type)
    {
        switch (text?.ToLowerInvariant())
        {
            case "f32":
                type = KvCacheType.F32;
                return true;
            case "f16":
                type = KvCacheType.F16;
                return true;
            case "bf16":
                type = KvCacheType.BF16;
                return true;
            default:
                type = default;
                return false;
        }
    }
}
