using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RawInfer.Native;

/// <summary>
/// Kernel argument values for <see cref="CudaFunction.Launch"/>, stored inline (no allocation): up to
/// <see cref="Capacity"/> values of at most 8 bytes, one 8-byte slot each. cuLaunchKernel wants an array of
/// pointers, one per parameter, each pointing at the value; the launch builds it on the stack over the pinned
/// slots. A smaller value sits at the start of its slot (little-endian), where the driver reads its size.
/// <code>var args = new KernelArguments(); args.Add(output.Pointer); args.Add(n); args.Add(1e-5f);</code>
/// </summary>
public struct KernelArguments
{
    /// <summary>The most arguments one launch takes.</summary>
    public const int Capacity = 24;

    internal ArgumentSlots Slots;
    private int _count;

    /// <summary>The number of arguments added since the last <see cref="Clear"/>.</summary>
    public readonly int Count => _count;

    /// <summary>Forgets the arguments, keeping the storage.</summary>
    public void Clear() => _count = 0;

    /// <summary>Adds a device pointer (or any pointer-sized value).</summary>
    public void Add(nint value) => AddBits((ulong)value);

    /// <summary>Adds a buffer's device pointer.</summary>
    public void Add(DeviceBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        AddBits((ulong)buffer.Pointer);
    }

    /// <summary>Adds an int.</summary>
    public void Add(int value) => AddBits((uint)value);

    /// <summary>Adds an unsigned int.</summary>
    public void Add(uint value) => AddBits(value);

    /// <summary>Adds a long long.</summary>
    public void Add(long value) => AddBits((ulong)value);

    /// <summary>Adds an unsigned long long.</summary>
    public void Add(ulong value) => AddBits(value);

    /// <summary>Adds a float.</summary>
    public void Add(float value) => AddBits(BitConverter.SingleToUInt32Bits(value));

    /// <summary>Adds a double.</summary>
    public void Add(double value) => AddBits(BitConverter.DoubleToUInt64Bits(value));

    /// <summary>Adds any unmanaged value of at most 8 bytes (a small struct passed by value).</summary>
    public void AddValue<T>(T value)
        where T : unmanaged
    {
        if (Unsafe.SizeOf<T>() > sizeof(ulong))
        {
            ThrowTooLarge(Unsafe.SizeOf<T>());
        }

        ulong bits = 0;
        Unsafe.WriteUnaligned(ref Unsafe.As<ulong, byte>(ref bits), value);
        AddBits(bits);
    }

    /// <summary>The raw 8-byte slot of argument <paramref name="index"/> (for tests and diagnostics).</summary>
    public readonly ulong SlotBits(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _count);
        return Slots[index];
    }

    /// <summary>Writes one pointer per argument into <paramref name="pointers"/>: slot i's address for argument i.</summary>
    internal readonly unsafe void WritePointers(void** pointers, ulong* pinnedSlots)
    {
        for (var i = 0; i < _count; i++)
        {
            pointers[i] = pinnedSlots + i;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AddBits(ulong bits)
    {
        if ((uint)_count >= Capacity)
        {
            ThrowFull();
        }

        Slots[_count++] = bits;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowFull() =>
        throw new InvalidOperationException($"a kernel launch takes at most {Capacity} arguments");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTooLarge(int size) =>
        throw new ArgumentException($"kernel argument of {size} bytes exceeds the 8-byte slot", "value");
}

/// <summary>Inline storage of <see cref="KernelArguments.Capacity"/> 8-byte argument slots.</summary>
[InlineArray(KernelArguments.Capacity)]
internal struct ArgumentSlots
{
    private ulong _element;
}
