namespace RawInfer.Models.Llama2c;

/// <summary>
/// Reads llama2.c checkpoints (legacy version 0: a 28-byte header, then float32 tensors). The file is memory
/// mapped and every weight is a <see cref="WeightTensor"/> view into the mapping: nothing is copied.
/// </summary>
public static class Llama2cCheckpoint
{
    /// <summary>Format name reported by <see cref="LoadedModel.Format"/>.</summary>
    public const string FormatName = "llama2c";

    /// <summary>
    /// Maps the checkpoint at <paramref name="path"/>, validates its header and length, and returns the model.
    /// Dispose the result to unmap the file.
    /// </summary>
    /// <exception cref="ModelFormatException">The header or the file length is invalid (names field and offset).</exception>
    public static unsafe LoadedModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (stream.Length == 0)
        {
            // An empty file cannot be mapped; report the missing header the same way as a short one.
            stream.Dispose();
            Llama2cLayout.Parse(path, ReadOnlySpan<byte>.Empty, 0);
            throw new System.Diagnostics.UnreachableException();
        }

        var mapping = MappedModelFile.Map(stream, Llama2cLayout.HeaderBytes); // the weights follow the 28-byte header
        try
        {
            // Validate the bytes actually mapped, so the length check and the pointers agree.
            var headerLength = (int)Math.Min(mapping.Length, Llama2cLayout.HeaderBytes);
            var layout = Llama2cLayout.Parse(path, mapping.Bytes(0, headerLength), mapping.Length);
            var weights = BuildWeights(layout, mapping.BasePointer);
            return new LoadedModel(Path.GetFullPath(path), FormatName, layout.Config, weights, mapping);
        }
        catch
        {
            mapping.Dispose();
            throw;
        }
    }

    /// <summary>Reads and validates only the header (and the file length), for tools that show a model's shape.</summary>
    /// <exception cref="ModelFormatException">The header or the file length is invalid.</exception>
    public static ModelConfig ReadHeader(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> header = stackalloc byte[Llama2cLayout.HeaderBytes];
        var read = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        return Llama2cLayout.Parse(path, header[..read], stream.Length).Config;
    }

    private static unsafe LlamaWeights BuildWeights(Llama2cLayout layout, byte* basePointer)
    {
        var config = layout.Config;
        var layers = new LayerWeights[config.NumLayers];
        for (var l = 0; l < layers.Length; l++)
        {
            layers[l] = new LayerWeights
            {
                AttentionNorm = TensorAt(layout, basePointer, Llama2cTensor.AttentionNorm, l),
                Wq = TensorAt(layout, basePointer, Llama2cTensor.Wq, l),
                Wk = TensorAt(layout, basePointer, Llama2cTensor.Wk, l),
                Wv = TensorAt(layout, basePointer, Llama2cTensor.Wv, l),
                Wo = TensorAt(layout, basePointer, Llama2cTensor.Wo, l),
                FfnNorm = TensorAt(layout, basePointer, Llama2cTensor.FfnNorm, l),
                W1 = TensorAt(layout, basePointer, Llama2cTensor.W1, l),
                W2 = TensorAt(layout, basePointer, Llama2cTensor.W2, l),
                W3 = TensorAt(layout, basePointer, Llama2cTensor.W3, l),
            };
        }

        var embedding = TensorAt(layout, basePointer, Llama2cTensor.TokenEmbedding, 0);
        return new LlamaWeights
        {
            TokenEmbedding = embedding,
            Layers = layers,
            FinalNorm = TensorAt(layout, basePointer, Llama2cTensor.FinalNorm, 0),
            Classifier = config.SharedClassifier ? embedding : TensorAt(layout, basePointer, Llama2cTensor.Classifier, 0),
        };
    }

    private static unsafe WeightTensor TensorAt(Llama2cLayout layout, byte* basePointer, Llama2cTensor tensor, int layer)
    {
        var (rows, cols) = Llama2cTensors.Shape(tensor, layout.Config);
        var offset = layout.Offsets[(int)tensor] + ((long)layer * rows * cols * sizeof(float));
        return new WeightTensor(basePointer + offset, TensorType.F32, rows, cols);
    }
}
