using System.IO.MemoryMappedFiles;

namespace RawInfer.Models.Llama2c;

/// <summary>
/// A whole model file in memory with its base pointer acquired once; weight tensors point into it. On Linux a
/// file that fits comfortably in RAM is copied into anonymous memory aligned to 2 MiB and advised for
/// transparent huge pages (<see cref="AnonymousModelMemory"/>); otherwise, or when RAWINFER_WEIGHTS=mmap, the
/// file is memory-mapped read-only. Disposing releases the memory (idempotent, never throws twice).
/// </summary>
/// <remarks>
/// Why copy: measured on the 2-core EPYC VM (THP "madvise"), one F32 110M matvec pass over file-mapped weights
/// took 27–28 ms of CPU time against 19 ms over the same bytes in huge-page anonymous memory; and that host's
/// DAMON reclaim pages out file pages idle for a minute, so the first tokens after a pause re-read the file.
/// Anonymous memory has neither problem (there is no swap). The price is the copy at load time.
/// </remarks>
internal sealed unsafe class MappedModelFile : IDisposable
{
    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly AnonymousModelMemory? _anonymous;
    private int _disposed;

    private MappedModelFile(MemoryMappedFile? file, MemoryMappedViewAccessor? view, AnonymousModelMemory? anonymous, byte* basePointer, long length)
    {
        _file = file;
        _view = view;
        _anonymous = anonymous;
        BasePointer = basePointer;
        Length = length;
    }

    /// <summary>First byte of the file.</summary>
    public byte* BasePointer { get; }

    /// <summary>File length in bytes at the time it was mapped.</summary>
    public long Length { get; }

    /// <summary>True when the bytes were copied into anonymous (huge-page advised) memory rather than mapped.</summary>
    public bool IsCopied => _anonymous is not null;

    /// <summary>Makes a copy writable or read-only again (<see cref="AnonymousModelMemory.SetWritable"/>); false for a mapping of the file.</summary>
    public bool SetWritable(bool writable) => _anonymous is not null && _anonymous.SetWritable(writable);

    /// <summary>The mapped bytes as a span; callers slice with offsets already checked against <see cref="Length"/>.</summary>
    public ReadOnlySpan<byte> Bytes(long offset, int count)
    {
        if (offset < 0 || count < 0 || offset > Length - count)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes {offset}..+{count} outside the {Length}-byte file");
        }

        return new ReadOnlySpan<byte>(BasePointer + offset, count);
    }

    /// <summary>True when <see cref="Map"/> would copy a file of <paramref name="length"/> bytes rather than map it.</summary>
    public static bool WillCopy(long length) => AnonymousModelMemory.ShouldCopy(length);

    /// <summary>Maps (or copies) <paramref name="stream"/>'s file (which must not be empty); takes ownership of the stream.</summary>
    /// <param name="stream">The file.</param>
    /// <param name="weightsOffset">
    /// The file offset of the weights (or the one most of their bytes share modulo 64): a copy puts it on a 64-byte
    /// cache line. A mapping keeps the file's own placement.
    /// </param>
    public static MappedModelFile Map(FileStream stream, long weightsOffset = 0)
    {
        var length = stream.Length;
        if (AnonymousModelMemory.ShouldCopy(length))
        {
            var anonymous = AnonymousModelMemory.TryCopy(stream, length, weightsOffset);
            if (anonymous is not null)
            {
                stream.Dispose();
                return new MappedModelFile(null, null, anonymous, anonymous.Pointer, length);
            }
        }

        return MapInPlace(stream, leaveOpen: false);
    }

    /// <summary>Memory-maps the file read-only, never copying it: for reading a header before the copy is placed.</summary>
    public static MappedModelFile MapInPlace(FileStream stream, bool leaveOpen)
    {
        var length = stream.Length;
        var file = MemoryMappedFile.CreateFromFile(
            stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            return new MappedModelFile(file, view, null, pointer + view.PointerOffset, length);
        }
        catch
        {
            view?.Dispose();
            file.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_anonymous is not null)
        {
            _anonymous.Dispose();
            return;
        }

        _view!.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file!.Dispose();
    }
}
