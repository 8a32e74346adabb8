using System.Runtime.InteropServices;

namespace RawInfer.Models.Llama2c;

/// <summary>
/// A model file copied into private anonymous memory (Linux): mmap'd with 2 MiB alignment, advised
/// MADV_HUGEPAGE so the kernel backs it with transparent huge pages (fewer TLB misses while streaming weights),
/// filled with positional reads, then made read-only. Unmapped on dispose (idempotent; never throws). A backend's own
/// copies of weights take the same kind of memory, writable (<see cref="TryAllocate"/>).
/// </summary>
internal sealed unsafe partial class AnonymousModelMemory : IDisposable
{
    private const long HugePage = 2L << 20;
    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int MapPrivate = 0x02;
    private const int MapAnonymous = 0x20;
    private const int MadvHugePage = 14;
    private const int ReadChunk = 64 << 20;

    private readonly byte* _mapping;
    private readonly nuint _mappingBytes;
    private int _disposed;

    private AnonymousModelMemory(byte* mapping, nuint mappingBytes, byte* pointer)
    {
        _mapping = mapping;
        _mappingBytes = mappingBytes;
        Pointer = pointer;
    }

    /// <summary>Bytes of a cache line: the copy places one chosen file offset on a multiple of it.</summary>
    public const int LineBytes = 64;

    /// <summary>First byte of the copy: 2 MiB aligned, plus the pad that puts the chosen file offset on a cache line.</summary>
    public byte* Pointer { get; }

    /// <summary>
    /// Copy when on Linux, not disabled by RAWINFER_WEIGHTS=mmap, and the file takes at most half of the memory
    /// the runtime sees: anonymous memory cannot be paged out without swap, a mapping can.
    /// </summary>
    public static bool ShouldCopy(long length) =>
        OperatingSystem.IsLinux()
        && !string.Equals(Environment.GetEnvironmentVariable("RAWINFER_WEIGHTS"), "mmap", StringComparison.OrdinalIgnoreCase)
        && length <= GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;

    /// <summary>Copies the whole file, or returns null if the memory cannot be mapped (the caller maps the file instead).</summary>
    /// <param name="stream">The file.</param>
    /// <param name="length">Its length in bytes.</param>
    /// <param name="lineOffset">
    /// The file offset that lands on a cache-line boundary in the copy (taken modulo <see cref="LineBytes"/>): the
    /// first byte of the weights, so that 64-byte vector loads of their rows do not straddle two lines.
    /// </param>
    /// <exception cref="IOException">The file ended before <paramref name="length"/> bytes (names the offset).</exception>
    public static AnonymousModelMemory? TryCopy(FileStream stream, long length, long lineOffset = 0)
    {
        var pad = (int)(-lineOffset & (LineBytes - 1));
        var memory = Map(pad + length, pad);
        if (memory is null)
        {
            return null;
        }

        try
        {
            for (long offset = 0; offset < length;)
            {
                var chunk = (int)Math.Min(ReadChunk, length - offset);
                var read = RandomAccess.Read(stream.SafeFileHandle, new Span<byte>(memory.Pointer + offset, chunk), offset);
                if (read == 0)
                {
                    throw new IOException($"{stream.Name}: the file ended at byte offset {offset}, expected {length} bytes");
                }

                offset += read;
            }

            _ = Mprotect(memory.Start, memory.Rounded, ProtRead); // weights are never written; failure leaves them writable
            return memory;
        }
        catch
        {
            memory.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <paramref name="length"/> bytes of zeroed, writable memory on Linux, mapped and advised as the copy is (2 MiB
    /// aligned, transparent huge pages), for a backend's own copies of weights: a huge page is faulted in at once
    /// where 4 KiB pages take one fault each, which costs a VM several milliseconds per MiB. Null elsewhere, or if
    /// the memory cannot be mapped. Unmapped on dispose.
    /// </summary>
    public static AnonymousModelMemory? TryAllocate(long length) =>
        OperatingSystem.IsLinux() && length > 0 ? Map(length, 0) : null;

    /// <summary>A private anonymous mapping holding <paramref name="bytes"/> from a 2 MiB boundary, advised MADV_HUGEPAGE; <see cref="Pointer"/> at that boundary plus <paramref name="pad"/>.</summary>
    private static AnonymousModelMemory? Map(long bytes, int pad)
    {
        var rounded = (bytes + HugePage - 1) & ~(HugePage - 1);
        var mappingBytes = (nuint)(rounded + HugePage);
        var mapping = Mmap(null, mappingBytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (mapping == (void*)-1)
        {
            return null;
        }

        var aligned = (byte*)(((nint)mapping + (nint)(HugePage - 1)) & ~(nint)(HugePage - 1));
        _ = Madvise(aligned, (nuint)rounded, MadvHugePage); // advice only: without THP the memory still works
        return new AnonymousModelMemory((byte*)mapping, mappingBytes, aligned + pad) { Start = aligned, Rounded = (nuint)rounded };
    }

    /// <summary>
    /// Makes the memory writable (for a backend that rewrites the weights in place) or read-only again, as the copy
    /// leaves it; false if the kernel refused.
    /// </summary>
    public bool SetWritable(bool writable) => Mprotect(Start, Rounded, writable ? ProtRead | ProtWrite : ProtRead) == 0;

    /// <summary>The 2 MiB boundary the memory starts at.</summary>
    private byte* Start { get; init; }

    /// <summary>Bytes from <see cref="Start"/>, rounded up to whole huge pages.</summary>
    private nuint Rounded { get; init; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _ = Munmap(_mapping, _mappingBytes);
        }
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(void* address, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(void* address, nuint length, int protection);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(void* address, nuint length);
}
