using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// Gives a model's Q8_0 matrices their block scales decoded to float32 once (<see cref="WeightTensor.DecodedScales"/>),
/// for a backend that multiplies them many times: the matrix-vector and in-register widening kernels then load
/// each block's scale instead of converting its half on every product. 4 bytes per 32 weights (12% on top of the
/// Q8_0 bytes), beside the weights rather than instead of them, since the weights' memory is shared.
/// <see cref="CpuTransformer"/> (its matrix-vector kernel, <see cref="MatVecQ8_0"/>) and the engine's runner (its
/// in-register widening for decode steps of one to three sequences, <see cref="WidenInRegisters"/>) each attach
/// them. In the runner, one-sequence decode steps of the 110M Q8_0 model with and without (<c>perf/RawInfer.Benchmarks
/// step-ab --switch scales --sequences 1</c>, 2 threads, the Xeon VM, ABBA medians): 0.84, 0.81 and 0.92 of the
/// time, three sequences 0.87. Before those tiles prefetched the next tile's blocks the same comparison gave 1.04
/// and 1.02: the loads waited on memory then, whatever the arithmetic. The tile widening of larger steps
/// (<see cref="Widen"/>) reads them too: 0.93 at 4 sequences, 0.96 at 16, 0.99 at 64 (one run each), where the
/// widening is paid once for more rows.
/// </summary>
internal static unsafe class DecodedScaleTables
{
    /// <summary>
    /// The weights with every Q8_0 matrix that goes through a product (the layers' seven and the classifier)
    /// carrying its decoded scales, kept in pinned arrays added to <paramref name="tables"/> (which must live as
    /// long as the weights returned). Other tensors come back as they are, and so do Q8_0 matrices rewritten in place
    /// (<see cref="WeightTensor.InterleavedInPlace"/>), whose kernels read each group's scales where they lie.
    /// </summary>
    public static LlamaWeights Attach(LlamaWeights weights, List<float[]> tables)
    {
        WeightTensor Decoded(WeightTensor w)
        {
            if (w.Type != TensorType.Q8_0 || w.InterleavedInPlace)
            {
                // rows rewritten in place read their scales from their groups, eight side by side, in every product
                // (the table would be one eighth of their bytes again for the few rows past the last group)
                return w;
            }

            var table = GC.AllocateUninitializedArray<float>(checked((int)(w.ElementCount / MatVecQ8_0.BlockElements)), pinned: true);
            MatVecQ8_0.DecodeScales(in w, table);
            tables.Add(table);
            return w.WithDecodedScales((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(table)));
        }

        return weights.WithProducts(Decoded);
    }
}
