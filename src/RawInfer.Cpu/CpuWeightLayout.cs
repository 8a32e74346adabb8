using System.Runtime.CompilerServices;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;

namespace RawInfer.Cpu;

/// <summary>
/// Rewrites a model's Q8_0 product matrices in place into the CPU backend's interleaved layout
/// (<see cref="GemmQ8_0.Interleave"/>: groups of eight rows whose quants one AVX-VNNI instruction multiplies at
/// once), instead of keeping a copy beside the file's layout. A group takes exactly the bytes of its rows in the file,
/// so the rewrite needs no memory beyond one group's scratch, and every product reads the new layout: decode steps
/// through the group kernel, larger steps through packed tiles made from the groups, the same bits as the file's
/// layout. Without it the runners (<see cref="Runner.CpuModelRunner"/>, <see cref="CpuTransformer"/>) copy the
/// matrices where the copy fits in a quarter of the memory (<see cref="InterleavedCopies"/>), twice the Q8_0 bytes;
/// a larger model then keeps the file's layout and its slower decode.
/// <para>
/// The rewritten model belongs to the CPU backend: the CUDA runner refuses it (load the file again for it). The rows
/// past a matrix's last whole group and every tensor that is not a product matrix keep the file's layout, except a
/// token embedding table the classifier shares: rewritten with it, its rows are looked up from the groups.
/// </para>
/// </summary>
public static unsafe class CpuWeightLayout
{
    /// <summary>
    /// Rewrites <paramref name="model"/>'s Q8_0 product matrices in place, right after loading and before anything has
    /// read <see cref="LoadedModel.Weights"/>. False, with the reason, where it cannot: no AVX-VNNI on this machine,
    /// no Q8_0 product matrix, the weights a read-only mapping of the file rather than the process's own copy, or
    /// already handed out or rewritten.
    /// </summary>
    public static bool TryInterleaveInPlace(LoadedModel model, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!GemmQ8_0.InterleavedSupported)
        {
            reason = "this machine has no AVX-VNNI (or the integer Q8_0 kernels are switched off)";
            return false;
        }

        var rewritten = model.TryRewriteWeights(
            weights =>
            {
                bool Rewrites(in WeightTensor w) =>
                    w.Type == TensorType.Q8_0 && w.Cols % MatVecQ8_0.BlockElements == 0 && w.Interleaved is null && w.Rows >= 8;

                var any = false;
                _ = weights.WithProducts(w =>
                {
                    any |= Rewrites(in w);
                    return w;
                });
                if (!any)
                {
                    return null;
                }

                var scratch = Array.Empty<byte>();
                var done = new HashSet<nint>(); // a matrix two products share is rewritten once
                var rewritten = weights.WithProducts(w =>
                {
                    if (!Rewrites(in w))
                    {
                        return w;
                    }

                    if (done.Add((nint)w.Data))
                    {
                        InterleaveRows(in w, ref scratch);
                    }

                    return w.WithInterleaved(w.Data);
                });

                // a classifier shared with the token embedding: the table is the same bytes, so it says so too (its
                // row lookups then read the groups, MatVecQ8_0.DequantizeRow)
                var embedding = weights.TokenEmbedding;
                return done.Contains((nint)embedding.Data) && embedding.Type == TensorType.Q8_0
                    ? new LlamaWeights { TokenEmbedding = embedding.WithInterleaved(embedding.Data), Layers = rewritten.Layers, FinalNorm = rewritten.FinalNorm, Classifier = rewritten.Classifier }
                    : rewritten;
            },
            out reason);
        if (!rewritten && reason == LoadedModel.NothingToRewrite)
        {
            reason = "the model has no Q8_0 product matrix (a layer's seven and the classifier) of whole 32-column blocks and at least eight rows";
        }

        return rewritten;
    }

    /// <summary>Throws where a reader of the file's Q8_0 layout meets a tensor rewritten in place.</summary>
    internal static void ThrowIfRewritten(in WeightTensor w)
    {
        if (w.InterleavedInPlace)
        {
            Throw();
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        static void Throw() => throw new InvalidOperationException(
            "this Q8_0 tensor was rewritten in place into the CPU backend's interleaved layout, which this kernel does not read");
    }

    /// <summary>Each whole group of eight rows copied out to <paramref name="scratch"/> and interleaved back into its own bytes.</summary>
    internal static void InterleaveRows(in WeightTensor w, ref byte[] scratch)
    {
        var groupBytes = 8L * (w.Cols / MatVecQ8_0.BlockElements) * MatVecQ8_0.BlockBytes;
        if (scratch.Length < groupBytes)
        {
            scratch = GC.AllocateUninitializedArray<byte>(checked((int)groupBytes), pinned: true);
        }

        fixed (byte* pScratch = scratch)
        {
            for (var g = 0; g < w.Rows / 8; g++)
            {
                var group = w.Data + (g * groupBytes);
                new ReadOnlySpan<byte>(group, (int)groupBytes).CopyTo(scratch);
                var rows = new WeightTensor(pScratch, TensorType.Q8_0, 8, w.Cols);
                GemmQ8_0.Interleave(in rows, group);
            }
        }
    }
}
