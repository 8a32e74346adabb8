using System.Diagnostics;

namespace RawInfer.Engine.Output;

/// <summary>
/// A growable array used as a queue of values: append at the end, consume from the front. Its storage is kept and
/// reused, so once it has grown to a request's working size, appending and consuming allocate nothing (the engine
/// thread's delivery path runs on these). Not thread-safe.
/// </summary>
internal sealed class SpanBuffer<T>
{
    private T[] _items;
    private int _count;

    public SpanBuffer(int initialCapacity = 16)
    {
        _items = new T[Math.Max(initialCapacity, 1)];
    }

    public int Count => _count;

    /// <summary>The values in order; valid until the next change.</summary>
    public ReadOnlySpan<T> Span => _items.AsSpan(0, _count);

    public void Append(T value)
    {
        if (_count == _items.Length)
        {
            Grow(_count + 1);
        }

        _items[_count++] = value;
    }

    public void Append(ReadOnlySpan<T> values)
    {
        values.CopyTo(GetAppendSpan(values.Length));
        _count += values.Length;
    }

    /// <summary>Room for at least <paramref name="length"/> more values; <see cref="Advance"/> by what was written.</summary>
    public Span<T> GetAppendSpan(int length)
    {
        if (_count + length > _items.Length)
        {
            Grow(_count + length);
        }

        return _items.AsSpan(_count);
    }

    public void Advance(int written)
    {
        Debug.Assert(written >= 0 && _count + written <= _items.Length, "advanced past the room handed out");
        _count += written;
    }

    /// <summary>Drops the first <paramref name="count"/> values (the rest move to the front).</summary>
    public void RemovePrefix(int count)
    {
        Debug.Assert(count >= 0 && count <= _count, "removing more than the buffer holds");
        if (count == 0)
        {
            return;
        }

        _items.AsSpan(count, _count - count).CopyTo(_items);
        Truncate(_count - count);
    }

    /// <summary>Keeps the first <paramref name="count"/> values.</summary>
    public void Truncate(int count)
    {
        Debug.Assert(count >= 0 && count <= _count, "truncating past the end");
        if (System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<T>())
        {
            _items.AsSpan(count, _count - count).Clear(); // let dropped objects go
        }

        _count = count;
    }

    public void Clear() => Truncate(0);

    private void Grow(int needed) => Array.Resize(ref _items, Math.Max(needed, _items.Length * 2));
}
