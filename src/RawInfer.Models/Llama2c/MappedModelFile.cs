using System.IO.MemoryMappedFiles;

namespace RawInfer.Models.Llama2c;

/// <summary>
/// A read-only memory mapping of a whole model file with its base pointer acquired once. Weight tensors point
/// into it; disposing releases the pointer and unmaps the file (idempotent, never throws twice).
/// </summary>
internal sealed unsafe class MappedModelFile : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private int _disposed;

    private MappedModelFile(MemoryMappedFile file, MemoryMappedViewAccessor view, byte* basePointer, long length)
    {
        _file = file;
        _view = view;
        BasePointer = basePointer;
        Length = length;
    }

    /// <summary>First byte of the file.</summary>
    public byte* BasePointer { get; }

    /// <summary>File length in bytes at the time it was mapped.</summary>
    public long Length { get; }

    /// <summary>The mapped bytes as a span; callers slice with offsets already checked against <see cref="Length"/>.</summary>
    public ReadOnlySpan<byte> Bytes(long offset, int count)
    {
        if (offset < 0 || count < 0 || offset > Length - count)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes {offset}..+{count} outside the {Length}-byte file");
        }

        return new ReadOnlySpan<byte>(BasePointer + offset, count);
    }

    /// <summary>Maps <paramref name="stream"/>'s file (which must not be empty); takes ownership of the stream.</summary>
    public static MappedModelFile Map(FileStream stream)
    {
        var length = stream.Length;
        var file = MemoryMappedFile.CreateFromFile(
            stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            return new MappedModelFile(file, view, pointer + view.PointerOffset, length);
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

        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
