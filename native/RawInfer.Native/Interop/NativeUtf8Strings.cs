using System.Runtime.InteropServices;
using System.Text;

namespace RawInfer.Native.Interop;

/// <summary>
/// NUL-terminated UTF-8 copies of strings in one native block plus a char** array over them, for calls that take
/// string arrays (NVRTC options, headers). Used on cold paths only.
/// </summary>
internal sealed unsafe class NativeUtf8Strings : IDisposable
{
    private byte* _block;
    private byte** _pointers;

    public NativeUtf8Strings(IReadOnlyList<string> values)
    {
        Count = values.Count;
        nuint total = 1;
        foreach (var value in values)
        {
            total += (nuint)Encoding.UTF8.GetByteCount(value) + 1;
        }

        _block = (byte*)NativeMemory.Alloc(total);
        _pointers = (byte**)NativeMemory.Alloc((nuint)Math.Max(Count, 1), (nuint)sizeof(byte*));
        var cursor = _block;
        for (var i = 0; i < Count; i++)
        {
            var written = Encoding.UTF8.GetBytes(values[i], new Span<byte>(cursor, (int)(total - (nuint)(cursor - _block))));
            cursor[written] = 0;
            _pointers[i] = cursor;
            cursor += written + 1;
        }
    }

    public int Count { get; }

    /// <summary>The char** array (null when there are no strings, as the C APIs accept).</summary>
    public byte** Pointers => Count == 0 ? null : _pointers;

    public byte* this[int index] => _pointers[index];

    public void Dispose()
    {
        NativeMemory.Free(_block);
        NativeMemory.Free(_pointers);
        _block = null;
        _pointers = null;
    }
}
