using RawInfer.Cpu.Kernels;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>
/// Scratch and activation buffers start on a 64-byte cache line whatever the pinned heap's placement of the array,
/// and hold the length asked for from there on.
/// </summary>
public sealed unsafe class LineAlignedTests
{
    [Fact]
    public void Scratch_of_every_element_size_starts_on_a_line_and_holds_the_length_from_there()
    {
        // arrays of varied sizes one after another, so that the heap's placement of each varies
        for (var length = 1; length < 200; length += 7)
        {
            sbyte[]? bytes = null;
            short[]? shorts = null;
            float[]? floats = null;
            AssertHolds(LineAligned.Scratch(ref bytes, length), length);
            AssertHolds(LineAligned.Scratch(ref shorts, length), length);
            AssertHolds(LineAligned.Scratch(ref floats, length), length);
        }
    }

    [Fact]
    public void Scratch_grows_only_when_the_length_from_the_line_does_not_fit()
    {
        float[]? scratch = null;
        var first = LineAligned.Scratch(ref scratch, 100);
        Assert.Same(first, LineAligned.Scratch(ref scratch, 100));
        Assert.Same(first, LineAligned.Scratch(ref scratch, 10));
        var grown = LineAligned.Scratch(ref scratch, 101);
        Assert.NotSame(first, grown);
        Assert.Same(grown, scratch);
        AssertHolds(grown, 101);
    }

    [Fact]
    public void Aligned_floats_start_on_a_line_and_span_exactly_their_length()
    {
        for (var length = 0; length < 100; length += 3)
        {
            var buffer = new AlignedFloats(length);
            Assert.Equal(0, (nint)buffer.Pointer % LineAligned.LineBytes);
            Assert.Equal(length, buffer.AsSpan().Length);
            buffer.AsSpan().Fill(1f); // every element writable, none past the array
            Assert.Throws<ArgumentOutOfRangeException>(() => buffer.AsSpan(0, length + 1));
        }
    }

    private static void AssertHolds<T>(T[] array, int length)
        where T : unmanaged
    {
        var start = LineAligned.Start(array);
        Assert.Equal(0, (nint)start % LineAligned.LineBytes);
        fixed (T* first = array)
        {
            var skipped = start - first;
            Assert.InRange(skipped, 0, (LineAligned.LineBytes / sizeof(T)) - 1);
            Assert.True(array.Length - skipped >= length, $"{array.Length} elements, {skipped} skipped, {length} needed");
        }

        LineAligned.Span(array, length).Clear(); // the whole span lies inside the array
    }
}
