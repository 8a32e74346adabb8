using RawInfer.Models;
using RawInfer.Models.Llama2c;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// A model's Q8_0 matrices copied with their rows in the interleaved layout of <see cref="GemmQ8_0.Interleave"/>
/// (<see cref="WeightTensor.Interleaved"/>), which the decode steps of up to <see cref="GemmQ8_0.InterleavedRows"/>
/// sequences read instead of the file's layout; this object owns the copies' memory. The copies are as large as the
/// matrices (the weights' own memory is shared, so they sit beside it), so they are only made where they fit: when
/// together they take at most <see cref="MemoryShare"/> of the memory the process may use. A model that large keeps
/// the file's layout and its speed, rather than the memory running out. On Linux the copies live in one anonymous
/// mapping on transparent huge pages (<see cref="AnonymousModelMemory.TryAllocate"/>): with 4 KiB pages, faulting in
/// the 110m model's 116 MB took 340 ms on the 2-core VM, twenty times what writing the copies took. Elsewhere they
/// live in a pinned array, where one array can hold them (else no copies are made). Matrices already rewritten in place
/// (<see cref="CpuWeightLayout"/>, which the CLI does where it can) get no copy: this is the fallback for weights that
/// could not be rewritten (a read-only mapping of the file, or weights already handed out).
/// </summary>
internal sealed unsafe class InterleavedCopies : IDisposable
{
    /// <summary>The share of the memory available to the process the copies may take together.</summary>
    public const double MemoryShare = 0.25;

    private readonly AnonymousModelMemory? _mapping;
    private readonly byte[]? _array; // pinned, where no mapping could be made

    private InterleavedCopies(long bytes, AnonymousModelMemory? mapping, byte[]? array)
    {
        Bytes = bytes;
        _mapping = mapping;
        _array = array;
    }

    ~InterleavedCopies() => _mapping?.Dispose();

    /// <summary>Bytes the copies take together (each on a cache line).</summary>
    public long Bytes { get; }

    /// <summary>True when the copies live in an anonymous mapping (Linux), false in a pinned array.</summary>
    public bool Mapped => _mapping is not null;

    /// <summary>Where the copies start: 64-byte aligned.</summary>
    private byte* Start => _mapping is not null ? _mapping.Pointer : LineAligned.Start(_array!);

    /// <summary>
    /// The weights with every Q8_0 matrix that goes through a product carrying its interleaved copy, and in
    /// <paramref name="copies"/> the owner of their memory, which must live as long as the weights returned; the
    /// weights as they are and a null owner where this machine has no AVX-VNNI or the copies would take more than
    /// <paramref name="availableBytes"/>·<see cref="MemoryShare"/> (by default, what the GC reports available).
    /// </summary>
    public static LlamaWeights Attach(LlamaWeights weights, out InterleavedCopies? copies, long availableBytes = 0)
    {
        copies = null;
        if (!GemmQ8_0.InterleavedSupported)
        {
            return weights;
        }

        long total = 0;
        _ = weights.WithProducts(w =>
        {
            total += Footprint(in w);
            return w;
        });
        var available = availableBytes > 0 ? availableBytes : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (total == 0 || total > available * MemoryShare)
        {
            return weights;
        }

        // an anonymous mapping on Linux, else a pinned array where one can hold them all, else no copies
        var mapping = AnonymousModelMemory.TryAllocate(total);
        if (mapping is null && total > Array.MaxLength - LineAligned.LineBytes)
        {
            return weights;
        }

        var owner = new InterleavedCopies(total, mapping, mapping is null ? LineAligned.Allocate<byte>((int)total) : null);
        long used = 0;
        var copied = weights.WithProducts(w =>
        {
            var bytes = Footprint(in w);
            if (bytes == 0)
            {
                return w;
            }

            var start = owner.Start + used;
            used += bytes;
            GemmQ8_0.Interleave(in w, start);
            return w.WithInterleaved(start);
        });
        copies = owner;
        return copied;
    }

    /// <summary>Unmaps the copies (a pinned array is left to the GC). The weights that point into them must not be used after.</summary>
    public void Dispose()
    {
        _mapping?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Bytes of <paramref name="w"/>'s copy rounded up to a cache line; 0 where it gets none.</summary>
    internal static long Footprint(in WeightTensor w) =>
        w.Type == TensorType.Q8_0 && w.Cols % MatVecQ8_0.BlockElements == 0 && w.Interleaved is null // none for rows rewritten in place
            ? (GemmQ8_0.InterleavedBytes(in w) + LineAligned.LineBytes - 1) & ~(long)(LineAligned.LineBytes - 1)
            : 0;
}
