namespace RawInfer.Models;

/// <summary>
/// Upper bounds a model header must respect. Far above any real Llama shape; they exist so that a corrupt or
/// hostile header is rejected with a clear message instead of driving size arithmetic into absurd ranges.
/// </summary>
public static class ModelLimits
{
    public const int MaxDim = 65_536;
    public const int MaxHiddenDim = 1 << 20;
    public const int MaxLayers = 1_024;
    public const int MaxVocab = 4 << 20;
    public const int MaxSeqLen = 1 << 20;
}
