namespace RawInfer.Models.Gguf;

/// <summary>
/// GGML tensor element types as GGUF stores them (the u32 type id of a tensor info). RawInfer computes with
/// <see cref="TensorType.F32"/>, <see cref="TensorType.F16"/>, <see cref="TensorType.BF16"/> and
/// <see cref="TensorType.Q8_0"/>; the other ids are known here only so that a file using them is described and
/// refused by name ("Q4_K is not supported") and its tensor sizes can still be checked against the file.
/// </summary>
public static class GgmlTypes
{
    // (name, elements per block, bytes per block), indexed by GGML type id; null for ids GGML retired.
    private static readonly (string Name, int BlockElements, int BlockBytes)?[] Table =
    {
        ("F32", 1, 4),          // 0
        ("F16", 1, 2),          // 1
        ("Q4_0", 32, 18),       // 2: fp16 scale + 16 bytes of nibbles
        ("Q4_1", 32, 20),       // 3
        null,                   // 4: Q4_2, removed
        null,                   // 5: Q4_3, removed
        ("Q5_0", 32, 22),       // 6
        ("Q5_1", 32, 24),       // 7
        ("Q8_0", 32, 34),       // 8: fp16 scale + 32 int8
        ("Q8_1", 32, 36),       // 9
        ("Q2_K", 256, 84),      // 10
        ("Q3_K", 256, 110),     // 11
        ("Q4_K", 256, 144),     // 12
        ("Q5_K", 256, 176),     // 13
        ("Q6_K", 256, 210),     // 14
        ("Q8_K", 256, 292),     // 15
        ("IQ2_XXS", 256, 66),   // 16
        ("IQ2_XS", 256, 74),    // 17
        ("IQ3_XXS", 256, 98),   // 18
        ("IQ1_S", 256, 50),     // 19
        ("IQ4_NL", 32, 18),     // 20
        ("IQ3_S", 256, 110),    // 21
        ("IQ2_S", 256, 82),     // 22
        ("IQ4_XS", 256, 136),   // 23
        ("I8", 1, 1),           // 24
        ("I16", 1, 2),          // 25
        ("I32", 1, 4),          // 26
        ("I64", 1, 8),          // 27
        ("F64", 1, 8),          // 28
        ("IQ1_M", 256, 56),     // 29
        ("BF16", 1, 2),         // 30
        null,                   // 31: Q4_0_4_4, removed
        null,                   // 32: Q4_0_4_8, removed
        null,                   // 33: Q4_0_8_8, removed
        ("TQ1_0", 256, 54),     // 34
        ("TQ2_0", 256, 66),     // 35
        null,                   // 36: IQ4_NL_4_4, removed
        null,                   // 37: IQ4_NL_4_8, removed
        null,                   // 38: IQ4_NL_8_8, removed
        ("MXFP4", 32, 17),      // 39
    };

    /// <summary>Elements per Q8_0 block: one fp16 scale then this many int8 values.</summary>
    public const int Q8_0BlockElements = 32;

    /// <summary>Bytes per Q8_0 block (2-byte fp16 scale + 32 int8).</summary>
    public const int Q8_0BlockBytes = 34;

    /// <summary>True when <paramref name="typeId"/> is a GGML type whose block layout is known.</summary>
    public static bool IsKnown(uint typeId) => typeId < (uint)Table.Length && Table[typeId] is not null;

    /// <summary>GGML's name of the type ("Q4_K"), or "type N" for an id nobody defines.</summary>
    public static string Name(uint typeId) => IsKnown(typeId) ? Table[typeId]!.Value.Name : $"type {typeId}";

    /// <summary>True for the types RawInfer's kernels read directly.</summary>
    public static bool IsSupported(uint typeId) =>
        typeId is (uint)TensorType.F32 or (uint)TensorType.F16 or (uint)TensorType.BF16 or (uint)TensorType.Q8_0;

    /// <summary>Elements per block (1 for plain float types, 32 or 256 for quantized ones).</summary>
    public static int BlockElements(uint typeId) => Table[typeId]!.Value.BlockElements;

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(uint typeId) => Table[typeId]!.Value.BlockBytes;

    /// <summary>Bytes of one row of <paramref name="cols"/> elements; cols must be a multiple of the block size.</summary>
    public static long RowBytes(TensorType type, long cols)
    {
        uint id = (uint)type;
        return cols / BlockElements(id) * BlockBytes(id);
    }

    /// <summary>GGML's name of a supported type.</summary>
    public static string Name(TensorType type) => Name((uint)type);
}
