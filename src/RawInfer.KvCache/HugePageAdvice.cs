using System.Runtime.InteropServices;

namespace RawInfer.KvCache;

/// <summary>
/// Asks Linux to back the 2 MiB-aligned interior of a large pinned array with transparent huge pages
/// (madvise MADV_HUGEPAGE), as the model loader does for the weights. The kernel's default mode on many systems
/// ("madvise") gives huge pages only to advised ranges. For the KV pool it pays in attention, which reads each
/// sequence's blocks from all over a layer's slab: with 4 KiB pages that walk needs a page-table lookup every few
/// rows. Advice only: where it is refused (another OS, THP off) the array works as before.
/// </summary>
internal static unsafe partial class HugePageAdvice
{
    private const long HugePage = 2L << 20;
    private const int MadvHugePage = 14;

    /// <summary>False when RAWINFER_KV_HUGEPAGES=0 (to compare against 4 KiB pages).</summary>
    public static bool Enabled { get; } =
        OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("RAWINFER_KV_HUGEPAGES") != "0";

    /// <summary>
    /// Advises the whole 2 MiB pages inside <paramref name="array"/> (elements of <paramref name="elementBytes"/>),
    /// which must never move (pinned-heap allocated). Returns false when nothing was advised (disabled, too small,
    /// or refused).
    /// </summary>
    public static bool Advise(Array array, int elementBytes)
    {
        if (!Enabled)
        {
            return false;
        }

        var handle = GCHandle.Alloc(array, GCHandleType.Pinned);
        try
        {
            var start = (long)handle.AddrOfPinnedObject();
            var end = start + (array.LongLength * elementBytes);
            var first = (start + HugePage - 1) & ~(HugePage - 1);
            var last = end & ~(HugePage - 1);
            return last > first && Madvise((void*)first, (nuint)(last - first), MadvHugePage) == 0;
        }
        finally
        {
            handle.Free();
        }
    }

    /// <summary>Linux madvise(2); also <see cref="PagePrefault"/>'s populate call.</summary>
    [LibraryImport("libc", EntryPoint = "madvise")]
    internal static partial int Madvise(void* address, nuint length, int advice);
}
