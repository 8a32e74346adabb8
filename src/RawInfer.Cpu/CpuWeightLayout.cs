using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
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
/// <para>
/// F16 product matrices, where the AVX-512 in-register kernels run, have every half multiplied by 2^10 in place
/// (<see cref="ScaleHalves"/>, <see cref="WeightTensor.HalvesScaled"/>), exactly, where the matrix's largest weight is
/// below 64 and it is not the embedding table: no half is then subnormal, so the decode kernels read a half's bits,
/// moved into float position, as a normal float (the weight times 2^-102) against inputs scaled by 2^102, in three
/// operations per 16 halves instead of the exact conversion's eight, with the same products and bits. A subnormal
/// half read that way would be a denormal operand, which Zen 5 and Intel cores pay for (see
/// <c>WidenInRegisters.ScaledHalfRows</c>; single-sequence F16 decode of the 110m shape against llama.cpp, Zen 5 VM:
/// 1.49x and 1.59x scaled against 1.33x and 1.39x with the file's halves, alternating).
/// </para>
/// </summary>
public static unsafe class CpuWeightLayout
{
    /// <summary>
    /// Rewrites <paramref name="model"/>'s Q8_0 product matrices in place into the interleaved layout (where AVX-VNNI
    /// runs) and scales its F16 ones' halves (where the AVX-512 kernels run), right after loading and before anything
    /// has read <see cref="LoadedModel.Weights"/>. False, with the reason, where it cannot: neither kind of kernel on
    /// this machine, no matrix to rewrite, the weights a read-only mapping of the file rather than the process's own
    /// copy, or already handed out or rewritten.
    /// </summary>
    public static bool TryRewriteInPlace(LoadedModel model, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(model);
        var interleaves = GemmQ8_0.InterleavedSupported;
        var scalesHalves = WidenInRegisters.Supports(TensorType.F16, WidenInRegisters.MinScaledHalfCols);
        if (!interleaves && !scalesHalves)
        {
            reason = "this machine has neither AVX-VNNI (or the integer Q8_0 kernels are switched off) nor the AVX-512 F16 kernels";
            return false;
        }

        var rewritten = model.TryRewriteWeights(
            weights =>
            {
                var embedding = weights.TokenEmbedding;
                bool Interleaves(in WeightTensor w) =>
                    interleaves && w.Type == TensorType.Q8_0 && w.Cols % MatVecQ8_0.BlockElements == 0 && w.Interleaved is null && w.Rows >= 8;

                // F16 rows the in-register kernels take, not the embedding table's (looked up elsewhere), no weight of 64
                // or more (each matrix scanned once: the answer is kept for the rewrite pass)
                var scannedHalves = new Dictionary<nint, bool>();
                bool ScalesHalves(in WeightTensor w)
                {
                    if (!(scalesHalves && w.Type == TensorType.F16 && !w.HalvesScaled && WidenInRegisters.Supports(TensorType.F16, w.Cols)
                        && w.Data != embedding.Data))
                    {
                        return false;
                    }

                    if (!scannedHalves.TryGetValue((nint)w.Data, out var scalable))
                    {
                        scannedHalves[(nint)w.Data] = scalable = HalvesScalable(in w);
                    }

                    return scalable;
                }

                var any = false;
                _ = weights.WithProducts(w =>
                {
                    any |= Interleaves(in w) || ScalesHalves(in w);
                    return w;
                });
                if (!any)
                {
                    return null;
                }

                var done = new HashSet<nint>(); // a matrix two products share is rewritten once
                var rewritten = weights.WithProducts(w =>
                {
                    if (Interleaves(in w))
                    {
                        if (done.Add((nint)w.Data))
                        {
                            InterleaveRows(in w);
                        }

                        return w.WithInterleaved(w.Data);
                    }

                    if (done.Contains((nint)w.Data) || ScalesHalves(in w))
                    {
                        if (done.Add((nint)w.Data))
                        {
                            ScaleHalves(in w);
                        }

                        return w.WithHalvesScaled();
                    }

                    return w;
                });

                // a classifier shared with the token embedding: the table is the same bytes, so it says so too (its
                // row lookups then read the groups, MatVecQ8_0.DequantizeRow)
                return done.Contains((nint)embedding.Data) && embedding.Type == TensorType.Q8_0
                    ? new LlamaWeights { TokenEmbedding = embedding.WithInterleaved(embedding.Data), Layers = rewritten.Layers, FinalNorm = rewritten.FinalNorm, Classifier = rewritten.Classifier }
                    : rewritten;
            },
            out reason);
        if (!rewritten && reason == LoadedModel.NothingToRewrite)
        {
            reason = "the model has no Q8_0 product matrix (a layer's seven and the classifier) of whole 32-column blocks and at least eight rows"
                + (scalesHalves ? ", and no F16 one of at least 16 columns whose weights are all below 64 in magnitude and which is not the embedding table" : "");
        }

        return rewritten;
    }

    /// <summary>
    /// What <see cref="TryRewriteInPlace"/> did to <paramref name="weights"/>, for a log line ("q8_0 rows interleaved
    /// in place", "f16 halves scaled in place", both), or null where it left them as the file has them.
    /// </summary>
    public static string? Describe(LlamaWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var interleaved = false;
        var scaled = false;
        _ = weights.WithProducts(w =>
        {
            interleaved |= w.InterleavedInPlace;
            scaled |= w.HalvesScaled;
            return w;
        });
        return (interleaved, scaled) switch
        {
            (true, true) => "q8_0 rows interleaved and f16 halves scaled in place",
            (true, false) => "q8_0 rows interleaved in place",
            (false, true) => "f16 halves scaled in place",
            _ => null,
        };
    }

    /// <summary>The largest half magnitude <see cref="ScaleHalves"/> takes: below 64 (0x5400), whose exponent 21 plus 10 still fits.</summary>
    private const ushort ScalableMagnitudeLimit = 0x5400;

    /// <summary>Halves per piece of a matrix that one thread scans or scales at a time (1 MiB).</summary>
    internal const long PieceHalves = 1L << 19;

    /// <summary>
    /// True when every half of <paramref name="w"/> is below 64 in magnitude, so each times 2^10 is a half (<see cref="ScaleHalves"/>).
    /// Pieces of <see cref="PieceHalves"/> go to every core: start-up scans each F16 product matrix once.
    /// </summary>
    internal static bool HalvesScalable(in WeightTensor w)
    {
        var p = (ushort*)w.Data;
        var n = w.ElementCount;
        var tooLarge = 0;
        _ = Parallel.For(0L, Pieces(n), (piece, state) =>
        {
            var (start, end) = Piece(piece, n);
            if (!PieceScalable(p + start, end - start))
            {
                Volatile.Write(ref tooLarge, 1);
                state.Stop();
            }
        });
        return tooLarge == 0;
    }

    private static long Pieces(long halves) => (halves + PieceHalves - 1) / PieceHalves;

    private static (long Start, long End) Piece(long piece, long halves) =>
        (piece * PieceHalves, Math.Min((piece + 1) * PieceHalves, halves));

    private static bool PieceScalable(ushort* p, long n)
    {
        long i = 0;
        var over = Vector512<ushort>.Zero;
        for (; i + 32 <= n; i += 32)
        {
            over |= Vector512.GreaterThanOrEqual(Vector512.Load(p + i) & Vector512.Create((ushort)0x7FFF), Vector512.Create(ScalableMagnitudeLimit));
        }

        var scalable = over == Vector512<ushort>.Zero;
        for (; i < n; i++)
        {
            scalable &= (p[i] & 0x7FFF) < ScalableMagnitudeLimit;
        }

        return scalable;
    }

    /// <summary>
    /// Multiplies every half of <paramref name="w"/> by 2^<see cref="WeightTensor.HalfScaleBits"/> in place, exactly
    /// (<see cref="HalvesScalable"/> must hold): a normal half's exponent goes up by 10, a subnormal one becomes normal,
    /// ±0 stays. Afterwards no half is subnormal (<see cref="WeightTensor.HalvesScaled"/>). Pieces of
    /// <see cref="PieceHalves"/> go to every core.
    /// </summary>
    internal static void ScaleHalves(in WeightTensor w)
    {
        var p = (ushort*)w.Data;
        var n = w.ElementCount;
        _ = Parallel.For(0L, Pieces(n), piece =>
        {
            var (start, end) = Piece(piece, n);
            ScalePiece(p + start, end - start);
        });
    }

    private static void ScalePiece(ushort* p, long n)
    {
        const ushort ExponentMask = 0x7C00;
        const ushort ExponentStep = WeightTensor.HalfScaleBits << 10;
        long i = 0;
        for (; i + 32 <= n; i += 32)
        {
            var v = Vector512.Load(p + i);
            var zeroExponent = Vector512.Equals(v & Vector512.Create(ExponentMask), Vector512<ushort>.Zero);
            Vector512.ConditionalSelect(zeroExponent, v, v + Vector512.Create(ExponentStep)).Store(p + i);
            if (!Vector512.EqualsAll(zeroExponent & (v & Vector512.Create((ushort)0x03FF)), Vector512<ushort>.Zero))
            {
                for (var j = i; j < i + 32; j++)
                {
                    p[j] = ScaleSubnormal(p[j]);
                }
            }
        }

        for (; i < n; i++)
        {
            p[i] = (p[i] & ExponentMask) != 0 ? (ushort)(p[i] + ExponentStep) : ScaleSubnormal(p[i]);
        }
    }

    /// <summary>A half of exponent 0 times 2^10 (±0 unchanged); any other half as it is (already scaled above).</summary>
    private static ushort ScaleSubnormal(ushort h)
    {
        if ((h & 0x7C00) != 0 || (h & 0x03FF) == 0)
        {
            return h;
        }

        // m · 2^-24 · 2^10 = m · 2^-14, exact in a float and a normal half (m < 1024)
        var magnitude = (Half)((h & 0x03FF) * 6.1035156e-05f);
        return (ushort)(BitConverter.HalfToUInt16Bits(magnitude) | (h & 0x8000));
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

    /// <summary>Refuses an F16 tensor whose halves were scaled in place (<see cref="WeightTensor.HalvesScaled"/>) to a kernel that reads the file's halves.</summary>
    internal static void ThrowIfHalvesScaled(in WeightTensor w)
    {
        if (w.HalvesScaled)
        {
            Throw();
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        static void Throw() => throw new InvalidOperationException(
            "this F16 tensor's halves were scaled by 2^10 in place for the CPU backend's in-register kernels, which this kernel does not read");
    }

    /// <summary>
    /// Each whole group of eight rows copied out to a scratch and interleaved back into its own bytes, the groups spread
    /// over every core (each worker with a scratch of its own).
    /// </summary>
    internal static void InterleaveRows(in WeightTensor w)
    {
        var groupBytes = 8L * (w.Cols / MatVecQ8_0.BlockElements) * MatVecQ8_0.BlockBytes;
        var data = w.Data;
        var cols = w.Cols;
        _ = Parallel.For(
            0,
            w.Rows / 8,
            () => GC.AllocateUninitializedArray<byte>(checked((int)groupBytes), pinned: true), // each worker's scratch
            (g, _, scratch) =>
            {
                var group = data + (g * groupBytes);
                new ReadOnlySpan<byte>(group, (int)groupBytes).CopyTo(scratch);
                fixed (byte* pScratch = scratch)
                {
                    var rows = new WeightTensor(pScratch, TensorType.Q8_0, 8, cols);
                    GemmQ8_0.Interleave(in rows, group);
                }

                return scratch;
            },
            _ => { });
    }
}
