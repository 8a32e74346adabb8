namespace RawInfer.Models.Llama2c;

/// <summary>The tensors of a llama2.c checkpoint, in file order.</summary>
internal enum Llama2cTensor
{
    TokenEmbedding,
    AttentionNorm,
    Wq,
    Wk,
    Wv,
    Wo,
    FfnNorm,
    W1,
    W2,
    W3,
    FinalNorm,
    FreqCisReal,
    FreqCisImag,
    Classifier,
    Count,
}

internal static class Llama2cTensors
{
    /// <summary>llama2.c's own field names, so an error message can be matched against run.c.</summary>
    public static string Name(Llama2cTensor tensor) => tensor switch
    {
        Llama2cTensor.TokenEmbedding => "token_embedding_table",
        Llama2cTensor.AttentionNorm => "rms_att_weight",
        Llama2cTensor.Wq => "wq",
        Llama2cTensor.Wk => "wk",
        Llama2cTensor.Wv => "wv",
        Llama2cTensor.Wo => "wo",
        Llama2cTensor.FfnNorm => "rms_ffn_weight",
        Llama2cTensor.W1 => "w1",
        Llama2cTensor.W2 => "w2",
        Llama2cTensor.W3 => "w3",
        Llama2cTensor.FinalNorm => "rms_final_weight",
        Llama2cTensor.FreqCisReal => "freq_cis_real",
        Llama2cTensor.FreqCisImag => "freq_cis_imag",
        Llama2cTensor.Classifier => "wcls",
        _ => throw new ArgumentOutOfRangeException(nameof(tensor), tensor, null),
    };

    /// <summary>(rows, cols) of one layer's slice of a tensor (or the whole tensor when not per-layer).</summary>
    public static (int Rows, int Cols) Shape(Llama2cTensor tensor, ModelConfig c) => tensor switch
    {
        Llama2cTensor.TokenEmbedding or Llama2cTensor.Classifier => (c.VocabSize, c.Dim),
        Llama2cTensor.AttentionNorm or Llama2cTensor.FfnNorm or Llama2cTensor.FinalNorm => (1, c.Dim),
        Llama2cTensor.Wq => (c.NumHeads * c.HeadDim, c.Dim),
        Llama2cTensor.Wk or Llama2cTensor.Wv => (c.KvDim, c.Dim),
        Llama2cTensor.Wo => (c.Dim, c.NumHeads * c.HeadDim),
        Llama2cTensor.W1 or Llama2cTensor.W3 => (c.HiddenDim, c.Dim),
        Llama2cTensor.W2 => (c.Dim, c.HiddenDim),
        Llama2cTensor.FreqCisReal or Llama2cTensor.FreqCisImag => (c.MaxSeqLen, c.HeadDim / 2),
        _ => throw new ArgumentOutOfRangeException(nameof(tensor), tensor, null),
    };

    /// <summary>True for tensors stored once per layer, (layers, rows, cols).</summary>
    public static bool IsPerLayer(Llama2cTensor tensor) =>
        tensor is >= Llama2cTensor.AttentionNorm and <= Llama2cTensor.W3;
}
