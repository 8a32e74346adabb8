namespace RawInfer.Native.Tests.Gpu;

/// <summary>
/// Graph capture and replay on a real device: a replay runs the recorded work on whatever device memory holds at
/// the time; a captured cuBLAS GEMM (with its own workspace) gives the eager GEMM's bits; a capture invalidated
/// by a synchronisation throws and leaves the stream usable. Skipped without a GPU.
/// </summary>
public sealed class CudaGraphTests
{
    [Fact]
    public void A_replay_reads_the_memory_as_it_is_at_replay_time()
    {
        var context = GpuGuard.RequireContext();
        using var stream = new CudaStream(context);
        using var source = new DeviceBuffer(context, 64 * sizeof(int));
        using var destination = new DeviceBuffer(context, 64 * sizeof(int));
        destination.Memset(0, stream);

        CudaGraph.BeginCapture(stream);
        Assert.True(CudaGraph.IsCapturing(stream));
        destination.CopyFrom(source, 64 * sizeof(int), stream);
        using var graph = CudaGraph.EndCapture(context, stream);
        Assert.False(CudaGraph.IsCapturing(stream));

        foreach (var round in new[] { 3, 11 })
        {
            var values = Enumerable.Range(0, 64).Select(i => (i * round) + 1).ToArray();
            source.CopyFromHost<int>(values, stream);
            graph.Launch(stream);
            var back = new int[64];
            destination.CopyToHost<int>(back, stream);
            stream.Synchronize();
            Assert.Equal(values, back);
        }
    }

    [Fact]
    public void A_captured_gemm_gives_the_eager_gemms_bits()
    {
        var context = GpuGuard.RequireContext();
        if (!Cublas.TryLoad(out var reason))
        {
            Assert.Skip(reason);
        }

        const int Rows = 3, In = 256, Out = 512;
        using var stream = new CudaStream(context);
        using var cublas = new CublasHandle(context);
        using var workspace = new DeviceBuffer(context, 32L << 20);
        cublas.SetStream(stream);
        cublas.SetWorkspace(workspace);
        var x = GpuGuard.RandomFloats(Rows * In, seed: 30).Select(v => BitConverter.HalfToUInt16Bits((Half)v)).ToArray();
        var w = GpuGuard.RandomFloats(Out * In, seed: 31).Select(v => BitConverter.HalfToUInt16Bits((Half)v)).ToArray();
        using var deviceX = new DeviceBuffer(context, x.Length * sizeof(ushort));
        using var deviceW = new DeviceBuffer(context, w.Length * sizeof(ushort));
        using var eagerY = new DeviceBuffer(context, Rows * Out * sizeof(float));
        using var graphY = new DeviceBuffer(context, Rows * Out * sizeof(float));
        deviceX.CopyFromHost<ushort>(x, stream);
        deviceW.CopyFromHost<ushort>(w, stream);

        cublas.LinearRowMajor(eagerY.Pointer, CudaDataType.R_32F, deviceX.Pointer, CudaDataType.R_16F, deviceW.Pointer, CudaDataType.R_16F, Rows, In, Out);
        CudaGraph.BeginCapture(stream);
        cublas.LinearRowMajor(graphY.Pointer, CudaDataType.R_32F, deviceX.Pointer, CudaDataType.R_16F, deviceW.Pointer, CudaDataType.R_16F, Rows, In, Out);
        using var graph = CudaGraph.EndCapture(context, stream);
        graphY.Memset(0xFF, stream); // NaNs: the replay must overwrite them
        graph.Launch(stream);

        var eager = new float[Rows * Out];
        var replayed = new float[Rows * Out];
        eagerY.CopyToHost<float>(eager, stream);
        graphY.CopyToHost<float>(replayed, stream);
        stream.Synchronize();
        for (var i = 0; i < eager.Length; i++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(eager[i]) == BitConverter.SingleToInt32Bits(replayed[i]), $"y[{i}]: eager {eager[i]}, replayed {replayed[i]}");
        }
    }

    [Fact]
    public void A_capture_broken_by_a_synchronisation_throws_and_leaves_the_stream_usable()
    {
        var context = GpuGuard.RequireContext();
        using var stream = new CudaStream(context);
        using var buffer = new DeviceBuffer(context, 256);

        CudaGraph.BeginCapture(stream);
        buffer.Memset(1, stream);
        Assert.Throws<CudaException>(stream.Synchronize);
        Assert.Throws<CudaException>(() => CudaGraph.EndCapture(context, stream));
        Assert.False(CudaGraph.IsCapturing(stream));

        buffer.Memset(7, stream);
        var back = new byte[256];
        buffer.CopyToHost(back, stream);
        stream.Synchronize();
        Assert.All(back, b => Assert.Equal(7, b));
    }
}
