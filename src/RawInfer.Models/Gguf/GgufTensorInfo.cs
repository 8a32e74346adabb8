namespace RawInfer.Models.Gguf;

/// <summary>
/// One tensor of a GGUF file as its header describes it, already checked: known type, dimensions whose product
/// fits, first dimension a multiple of the type's block, data aligned and inside the file.
/// </summary>
/// <param name="Name">Tensor name ("blk.0.attn_q.weight").</param>
/// <param name="TypeId">GGML type id (see <see cref="GgmlTypes"/>).</param>
/// <param name="Dimensions">Dimensions innermost first, as GGUF lists them: ne0 is the row length (columns).</param>
/// <param name="FileOffset">Absolute offset of the first data byte in the file.</param>
/// <param name="SizeBytes">Bytes of data.</param>
/// <param name="InfoOffset">Offset of this tensor's info record in the header (for error messages).</param>
public sealed record GgufTensorInfo(
    string Name,
    uint TypeId,
    IReadOnlyList<long> Dimensions,
    long FileOffset,
    long SizeBytes,
    long InfoOffset)
{
    /// <summary>GGML's name of the type ("F16", "Q4_K").</summary>
    public string TypeName => GgmlTypes.Name(TypeId);

    /// <summary>True when RawInfer's kernels can use this tensor in place.</summary>
    public bool IsSupported => GgmlTypes.IsSupported(TypeId);

    /// <summary>Number of elements (product of the dimensions).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Dimensions)
            {
                n *= d;
            }

            return n;
        }
    }

    /// <summary>The dimensions as GGUF writes them, innermost first: "[64, 512]".</summary>
    public string ShapeText => "[" + string.Join(", ", Dimensions) + "]";
}
