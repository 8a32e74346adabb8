using System.Runtime.InteropServices;

namespace RawInfer.KvCache;

/// <summary>
/// Commits the memory behind a large pinned array now instead of at its first write. The runtime takes a large
/// array's pages fresh from the OS, which maps them on first touch; for a KV pool that first touch falls inside
/// whichever forward pass first writes a block there, and on a huge-page-advised slab each such fault zeroes
/// 2 MiB. On Linux this asks the kernel to populate the range (madvise MADV_POPULATE_WRITE, Linux 5.14);
/// where that is refused (another OS, an older kernel) it writes every page, rewriting one byte with its own
/// value, so the contents never change either way.
/// </summary>
internal static unsafe class PagePrefault
{
    private const long PageBytes = 4096;
    private const int MadvPopulateWrite = 23;

    /// <summary>False takes the portable path (a write to every page) everywhere: for tests of that path.</summary>
    internal static bool UseMadvise { get; set; } = true;

    /// <summary>
    /// Faults in every page of <paramref name="array"/> (elements of <paramref name="elementBytes"/>) for writing.
    /// The array must be pinned-heap allocated and used by no other thread meanwhile.
    /// </summary>
    public static void Commit(Array array, int elementBytes)
    {
        var handle = GCHandle.Alloc(array, GCHandleType.Pinned);
        try
        {
            var start = (byte*)handle.AddrOfPinnedObject();
            var bytes = array.LongLength * elementBytes;
            if (bytes == 0)
            {
                return;
            }

            var first = ((long)start + PageBytes - 1) & ~(PageBytes - 1);
            var last = ((long)start + bytes) & ~(PageBytes - 1);
            if (UseMadvise && OperatingSystem.IsLinux() && last > first
                && HugePageAdvice.Madvise((void*)first, (nuint)(last - first), MadvPopulateWrite) == 0)
            {
                // the whole pages are in; the partial ones at either end take one write each
                Touch(start);
                Touch(start + bytes - 1);
                return;
            }

            for (long offset = 0; offset < bytes; offset += PageBytes)
            {
                Touch(start + offset);
            }

            Touch(start + bytes - 1);
        }
        finally
        {
            handle.Free();
        }
    }

    /// <summary>Writes the byte at <paramref name="p"/> back unchanged: a write fault, never optimised away.</summary>
    private static void Touch(byte* p) => Volatile.Write(ref *p, Volatile.Read(ref *p));
}
