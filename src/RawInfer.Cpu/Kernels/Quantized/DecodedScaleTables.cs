using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// Gives a model's Q8_0 matrices their block scales decoded to float32 once (<see cref="WeightTensor.DecodedScales"/>),
/// for a backend that multiplies them many times: the matrix-vector and in-register widening kernels then load
/// each block's scale instead of converting its half on every product. 4 bytes per 32 weights (12% on top of the
/// Q8_0 bytes), beside the weights rather than instead of them, since the weights' memory is shared. Only
/// <see cref="CpuTransformer"/> attaches them: the engine's runner reading them in its in-register widening (each
/// 8-row tile's scales copied block-major, then one load per chunk instead of a conversion) measured 1.04 and 1.02
/// of the time of one-sequence decode steps (<c>step-ab --switch scales --sequences 1</c>), the copy costing what
/// the conversion had, so it does not pay there for the memory.
/// </summary>
internal static unsafe class DecodedScaleTables
{
    /// <summary>
    /// The weights with every Q8_0 matrix that goes through a product (the layers' seven and the classifier)
    /// carrying its decoded scales, kept in pinned arrays added to <paramref name="tables"/> (which must live as
    /// long as the weights returned). Other tensors come back as they are.
    /// </summary>
    public static LlamaWeights Attach(LlamaWeights weights, List<float[]> tables)
    {
        WeightTensor Decoded(WeightTensor w)
        {
            if (w.Type != TensorType.Q8_0)
            {
                return w;
            }

            var table = GC.AllocateUninitializedArray<float>(checked((int)(w.ElementCount / MatVecQ8_0.BlockElements)), pinned: true);
            MatVecQ8_0.DecodeScales(in w, table);
            tables.Add(table);
            return w.WithDecodedScales((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(table)));
        }

        var layers = new LayerWeights[weights.Layers.Count];
        for (var l = 0; l < layers.Length; l++)
        {
            var layer = weights.Layers[l];
            layers[l] = new LayerWeights
            {
                AttentionNorm = layer.AttentionNorm,
                Wq = Decoded(layer.Wq),
                Wk = Decoded(layer.Wk),
                Wv = Decoded(layer.Wv),
                Wo = Decoded(layer.Wo),
                FfnNorm = layer.FfnNorm,
                W1 = Decoded(layer.W1),
                W2 = Decoded(layer.W2),
                W3 = Decoded(layer.W3),
            };
        }

        return new LlamaWeights
        {
            TokenEmbedding = weights.TokenEmbedding,
            Layers = layers,
            FinalNorm = weights.FinalNorm,
            Classifier = Decoded(weights.Classifier),
        };
    }
}
