using System.Runtime.InteropServices;

namespace RawInfer.Native.Tests;

public sealed unsafe class KernelArgumentsTests
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TwoShorts
    {
        public short A;
        public short B;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Sixteen
    {
        public long A;
        public long B;
    }

    [Fact]
    public void Each_pointer_points_at_its_stored_value()
    {
        var args = new KernelArguments();
        args.Add(unchecked((nint)0x1234_5678_9ABC));
        args.Add(-7);
        args.Add(1.5f);
        args.Add(-3L);
        args.Add(2.25);
        args.Add(uint.MaxValue);
        args.AddValue(new TwoShorts { A = 11, B = -12 });

        var pointers = stackalloc void*[KernelArguments.Capacity];
        // args is a local, so its slots do not move.
        var slots = &args.Slots[0];
        {
            args.WritePointers(pointers, slots);

            for (var i = 0; i < args.Count; i++)
            {
                Assert.True(pointers[i] == slots + i, $"argument {i} does not point at slot {i}");
            }

            Assert.Equal(unchecked((nint)0x1234_5678_9ABC), *(nint*)pointers[0]);
            Assert.Equal(-7, *(int*)pointers[1]);
            Assert.Equal(1.5f, *(float*)pointers[2]);
            Assert.Equal(-3L, *(long*)pointers[3]);
            Assert.Equal(2.25, *(double*)pointers[4]);
            Assert.Equal(uint.MaxValue, *(uint*)pointers[5]);
            Assert.Equal(11, ((TwoShorts*)pointers[6])->A);
            Assert.Equal(-12, ((TwoShorts*)pointers[6])->B);
        }

        Assert.Equal(7, args.Count);
        Assert.Equal(0xFFFF_FFF9UL, args.SlotBits(1)); // an int fills the low 4 bytes; the rest stays zero
    }

    [Fact]
    public void Clear_and_refill_allocates_nothing()
    {
        var args = new KernelArguments();
        var pointers = stackalloc void*[KernelArguments.Capacity];
        Fill(ref args, pointers, 1); // warm up (JIT) before measuring

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            Fill(ref args, pointers, i);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(5, args.Count);
    }

    private static void Fill(ref KernelArguments args, void** pointers, int i)
    {
        args.Clear();
        args.Add((nint)i);
        args.Add(i);
        args.Add(i * 0.5f);
        args.Add((long)i);
        args.AddValue((ushort)i);
        fixed (ulong* slots = &args.Slots[0])
        {
            args.WritePointers(pointers, slots);
        }
    }

    [Fact]
    public void More_than_capacity_throws()
    {
        var args = new KernelArguments();
        for (var i = 0; i < KernelArguments.Capacity; i++)
        {
            args.Add(i);
        }

        var error = Assert.Throws<InvalidOperationException>(() => args.Add(0));

        Assert.Contains($"at most {KernelArguments.Capacity}", error.Message, StringComparison.Ordinal);
        Assert.Equal(KernelArguments.Capacity, args.Count);
    }

    [Fact]
    public void Values_wider_than_a_slot_are_rejected()
    {
        var args = new KernelArguments();

        Assert.Throws<ArgumentException>(() => args.AddValue(new Sixteen()));
        Assert.Equal(0, args.Count);
    }
}
