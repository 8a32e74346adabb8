namespace RawInfer.Native.Tests.Gpu;

public sealed class DeviceMemoryTests
{
    [Fact]
    public void Device_reports_its_properties()
    {
        var context = GpuGuard.RequireContext();
        var device = context.Device;

        Assert.False(string.IsNullOrWhiteSpace(device.Name));
        Assert.Equal(device.ComputeCapability.Major, device.GetAttribute(CudaDeviceAttribute.ComputeCapabilityMajor));
        Assert.Equal($"sm_{device.ComputeCapability.Major}{device.ComputeCapability.Minor}", device.Architecture);
        Assert.Equal(32, device.GetAttribute(CudaDeviceAttribute.WarpSize));
        Assert.True(device.MultiprocessorCount > 0);
        var (free, total) = context.MemoryInfo();
        Assert.InRange(free, 1, total);
        Assert.Equal(device.TotalMemoryBytes, total);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(257)]
    [InlineData(1025)]
    public void Copy_to_device_and_back_roundtrips(int count)
    {
        var context = GpuGuard.RequireContext();
        using var stream = new CudaStream(context);
        var source = GpuGuard.RandomFloats(count, seed: count);
        var back = new float[count];

        using var buffer = new DeviceBuffer(context, count * sizeof(float));
        buffer.CopyFromHost<float>(source, stream);
        buffer.CopyToHost<float>(back, stream);
        stream.Synchronize();

        Assert.Equal(source, back);
    }

    [Fact]
    public void Stream_orders_copies_memsets_and_device_to_device_copies()
    {
        var context = GpuGuard.RequireContext();
        using var stream = new CudaStream(context);
        const int Bytes = 4096 + 3;
        var source = new byte[Bytes];
        new Random(7).NextBytes(source);

        using var a = new DeviceBuffer(context, Bytes);
        using var b = new DeviceBuffer(context, Bytes);
        using var pinned = new PinnedHostBuffer(context, Bytes);
        source.CopyTo(pinned.AsSpan());

        // Every step below is queued without waiting; only the final synchronize blocks.
        unsafe
        {
            a.CopyFromHost((void*)pinned.Pointer, Bytes, stream);       // a = source
        }

        b.Memset(0xAB, stream);                                          // b = 0xAB...
        b.CopyFrom(a, 1000, stream, sourceOffsetBytes: 100, destinationOffsetBytes: 10); // b[10..1010) = a[100..1100)
        a.Memset(0, stream);                                             // must not affect the copy queued before it
        unsafe
        {
            b.CopyToHost((void*)pinned.Pointer, Bytes, stream);
        }

        stream.Synchronize();

        var expected = Enumerable.Repeat((byte)0xAB, Bytes).ToArray();
        Array.Copy(source, 100, expected, 10, 1000);
        Assert.Equal(expected, pinned.AsSpan().ToArray());
        var aBack = new byte[Bytes];
        a.CopyToHost(aBack, stream);
        Assert.All(aBack, value => Assert.Equal(0, value));
    }

    [Fact]
    public void Pinned_buffer_views_match_its_size()
    {
        var context = GpuGuard.RequireContext();

        using var pinned = new PinnedHostBuffer(context, 1000);

        Assert.Equal(1000, pinned.AsSpan().Length);
        Assert.Equal(250, pinned.AsSpan<float>().Length);
        Assert.NotEqual(0, pinned.Pointer);
    }

    [Fact]
    public void Out_of_range_copy_is_refused_before_the_driver()
    {
        var context = GpuGuard.RequireContext();
        using var stream = new CudaStream(context);
        using var buffer = new DeviceBuffer(context, 64);

        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.CopyFromHost(new byte[65], stream));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.CopyToHost(new byte[8], stream, offsetBytes: 60));
    }

    [Fact]
    public void Impossible_allocation_throws_a_cuda_exception_naming_the_call()
    {
        var context = GpuGuard.RequireContext();

        var error = Assert.Throws<CudaException>(() => new DeviceBuffer(context, 1L << 50));

        Assert.Equal("cuMemAlloc_v2", error.Call);
        Assert.Equal("CUDA_ERROR_OUT_OF_MEMORY", error.ErrorName);
    }

    [Fact]
    public void Disposed_buffers_are_released_and_the_context_stays_usable()
    {
        var context = GpuGuard.RequireContext();
        var buffers = new List<DeviceBuffer>();
        for (var i = 0; i < 8; i++)
        {
            buffers.Add(new DeviceBuffer(context, 1 << 20));
        }

        foreach (var buffer in buffers)
        {
            buffer.Dispose();
            Assert.True(buffer.IsClosed);
        }

        using var after = new DeviceBuffer(context, 1 << 20);
        Assert.NotEqual(0, after.Pointer);
    }
}
