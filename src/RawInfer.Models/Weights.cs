namespace RawInfer.Models;

/// <summary>Element type of a weight tensor. Values are GGML's type ids so GGUF headers map directly.</summary>
public enum TensorType
{
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
    BF16 = 30,
}

/// <summary>
/// A row-major weight matrix (rows = outputs, cols = inputs) living in a memory-mapped model file.
/// A vector (a norm weight) is a matrix with one row. The pointer stays valid while the owning
/// <see cref="LoadedModel"/> is alive; kernels read it in place, never copying whole matrices.
/// </summary>
public readonly unsafe struct WeightTensor
{
    public WeightTensor(byte* data, TensorType type, int rows, int cols)
        : this(data, type, rows, cols, null, null, false)
    {
    }

    private WeightTensor(byte* data, TensorType type, int rows, int cols, float* decodedScales, byte* interleaved, bool halvesScaled)
    {
        Data = data;
        Type = type;
        Rows = rows;
        Cols = cols;
        DecodedScales = decodedScales;
        Interleaved = interleaved;
        HalvesScaled = halvesScaled;
    }

    /// <summary>The power of two by which <see cref="HalvesScaled"/> halves were multiplied: 2^10.</summary>
    public const int HalfScaleBits = 10;

    /// <summary>
    /// For <see cref="TensorType.F16"/>: the CPU backend multiplied every half by 2^<see cref="HalfScaleBits"/> in
    /// place, which leaves no subnormal half (the tensor's largest weight being below 64, none overflows), so a
    /// half's bits moved into float position are a normal float; each weight is the stored half times 2^-10, and only
    /// a reader that knows it may read the tensor.
    /// </summary>
    public bool HalvesScaled { get; }

    /// <summary>First byte of the tensor. (rows, cols) elements of <see cref="Type"/>.</summary>
    public byte* Data { get; }

    /// <summary>
    /// For <see cref="TensorType.Q8_0"/>: every block's fp16 scale decoded to float32, (rows, cols/32) row-major,
    /// when a backend has decoded them once (<see cref="WithDecodedScales"/>); null otherwise. Kernels that find
    /// it read the scales there instead of converting each block's half on every product; the values are the
    /// same, so are the results. The memory belongs to whoever decoded it.
    /// </summary>
    public float* DecodedScales { get; }

    /// <summary>
    /// For <see cref="TensorType.Q8_0"/>: a backend's copy of the rows in its own layout (the CPU backend's groups
    /// of eight rows with interleaved quants), when it has made one (<see cref="WithInterleaved"/>); null otherwise.
    /// Every value is the same. The memory belongs to whoever made it. Equal to <see cref="Data"/> when the rows
    /// were rewritten in place (<see cref="InterleavedInPlace"/>).
    /// </summary>
    public byte* Interleaved { get; }

    /// <summary>
    /// True when the CPU backend rewrote the rows in place (<see cref="Interleaved"/> = <see cref="Data"/>): the
    /// rows of whole groups of eight are then in its layout, not the file's, and only a reader of that layout may
    /// read them. The rows past the last whole group keep the file's layout, at their file offsets.
    /// </summary>
    public bool InterleavedInPlace => Interleaved is not null && Interleaved == Data;

    public TensorType Type { get; }

    public int Rows { get; }

    public int Cols { get; }

    public long ElementCount => (long)Rows * Cols;

    /// <summary>This tensor with <see cref="DecodedScales"/> set: same data, same shape.</summary>
    public WeightTensor WithDecodedScales(float* scales) => new(Data, Type, Rows, Cols, scales, Interleaved, HalvesScaled);

    /// <summary>This tensor with <see cref="Interleaved"/> set: same data, same shape.</summary>
    public WeightTensor WithInterleaved(byte* rows) => new(Data, Type, Rows, Cols, DecodedScales, rows, HalvesScaled);

    /// <summary>This tensor marked <see cref="HalvesScaled"/>: its halves were scaled in place.</summary>
    public WeightTensor WithHalvesScaled() => new(Data, Type, Rows, Cols, DecodedScales, Interleaved, true);

    /// <summary>The tensor as float32 elements; only valid for <see cref="TensorType.F32"/>.</summary>
    public ReadOnlySpan<float> AsF32()
    {
        if (Type != TensorType.F32)
        {
            throw new InvalidOperationException($"tensor is {Type}, not F32");
        }

        return new ReadOnlySpan<float>(Data, checked((int)ElementCount));
    }
}

/// <summary>Weights of one transformer block. Shapes are (rows, cols) = (out, in).</summary>
public sealed class LayerWeights
{
    public required WeightTensor AttentionNorm { get; init; } // (1, dim)
    public required WeightTensor Wq { get; init; }            // (nHeads*headDim, dim)
    public required WeightTensor Wk { get; init; }            // (kvDim, dim)
    public required WeightTensor Wv { get; init; }            // (kvDim, dim)
    public required WeightTensor Wo { get; init; }            // (dim, nHeads*headDim)
    public required WeightTensor FfnNorm { get; init; }       // (1, dim)
    public required WeightTensor W1 { get; init; }            // (hidden, dim) gate
    public required WeightTensor W2 { get; init; }            // (dim, hidden) down
    public required WeightTensor W3 { get; init; }            // (hidden, dim) up
}

/// <summary>All weights of a Llama-architecture decoder, in llama2.c's RoPE layout (adjacent pairs).</summary>
public sealed class LlamaWeights
{
    public required WeightTensor TokenEmbedding { get; init; } // (vocab, dim)
    public required IReadOnlyList<LayerWeights> Layers { get; init; }
    public required WeightTensor FinalNorm { get; init; }      // (1, dim)
    public required WeightTensor Classifier { get; init; }     // (vocab, dim); the embedding when shared

    /// <summary>
    /// These weights with every matrix that goes through a product (each layer's seven and the classifier) replaced
    /// by <paramref name="map"/>'s result; the embedding and the norms as they are.
    /// </summary>
    public LlamaWeights WithProducts(Func<WeightTensor, WeightTensor> map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var layers = new LayerWeights[Layers.Count];
        for (var l = 0; l < layers.Length; l++)
        {
            var layer = Layers[l];
            layers[l] = new LayerWeights
            {
                AttentionNorm = layer.AttentionNorm,
                Wq = map(layer.Wq),
                Wk = map(layer.Wk),
                Wv = map(layer.Wv),
                Wo = map(layer.Wo),
                FfnNorm = layer.FfnNorm,
                W1 = map(layer.W1),
                W2 = map(layer.W2),
                W3 = map(layer.W3),
            };
        }

        return new LlamaWeights
        {
            TokenEmbedding = TokenEmbedding,
            Layers = layers,
            FinalNorm = FinalNorm,
            Classifier = map(Classifier),
        };
    }
}
