namespace RawInfer.Native.Tests.Gpu;

public sealed class CublasTests
{
    private static CudaContext RequireCublas()
    {
        var context = GpuGuard.RequireContext();
        if (!Cublas.TryLoad(out var reason))
        {
            Assert.Skip(reason);
        }

        return context;
    }

    /// <summary>Round to the storage type and back, so the CPU reference sees exactly what the GPU multiplies.</summary>
    private static (ushort[] Bits, float[] Values) Quantize(float[] values, CudaDataType type)
    {
        var bits = new ushort[values.Length];
        var rounded = new float[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            if (type == CudaDataType.R_16F)
            {
                var half = (Half)values[i];
                bits[i] = BitConverter.HalfToUInt16Bits(half);
                rounded[i] = (float)half;
            }
            else
            {
                var f32 = BitConverter.SingleToUInt32Bits(values[i]);
                var bf16 = (ushort)((f32 + 0x7FFF + ((f32 >> 16) & 1)) >> 16); // round to nearest even
                bits[i] = bf16;
                rounded[i] = BitConverter.UInt32BitsToSingle((uint)bf16 << 16);
            }
        }

        return (bits, rounded);
    }

    [Theory]
    [InlineData(CudaDataType.R_16F, 17, 64, 33)]
    [InlineData(CudaDataType.R_16BF, 17, 64, 33)]
    [InlineData(CudaDataType.R_16F, 1, 257, 1025)]
    public void Linear_layer_matches_a_cpu_reference(CudaDataType type, int rows, int inFeatures, int outFeatures)
    {
        var context = RequireCublas();
        using var stream = new CudaStream(context);
        using var cublas = new CublasHandle(context);
        cublas.SetStream(stream);
        var (xBits, x) = Quantize(GpuGuard.RandomFloats(rows * inFeatures, seed: 10), type);           // (rows, in)
        var (wBits, w) = Quantize(GpuGuard.RandomFloats(outFeatures * inFeatures, seed: 11), type);    // (out, in)
        using var deviceX = new DeviceBuffer(context, x.Length * sizeof(ushort));
        using var deviceW = new DeviceBuffer(context, w.Length * sizeof(ushort));
        using var deviceY = new DeviceBuffer(context, rows * outFeatures * sizeof(float));             // (rows, out)
        deviceX.CopyFromHost<ushort>(xBits, stream);
        deviceW.CopyFromHost<ushort>(wBits, stream);

        cublas.LinearRowMajor(deviceY.Pointer, CudaDataType.R_32F, deviceX.Pointer, type, deviceW.Pointer, type, rows, inFeatures, outFeatures);
        var y = new float[rows * outFeatures];
        deviceY.CopyToHost<float>(y, stream);
        stream.Synchronize();

        for (var r = 0; r < rows; r++)
        {
            for (var o = 0; o < outFeatures; o++)
            {
                double sum = 0, magnitude = 0;
                for (var i = 0; i < inFeatures; i++)
                {
                    var term = (double)x[r * inFeatures + i] * w[o * inFeatures + i];
                    sum += term;
                    magnitude += Math.Abs(term);
                }

                // Products of 16-bit inputs are exact in F32; only the F32 accumulation (order, tensor-core
                // rounding) differs. A wrong layout or transpose errs by the order of the magnitude itself.
                var tolerance = 1e-4 * magnitude + 1e-6;
                Assert.True(Math.Abs(y[r * outFeatures + o] - sum) <= tolerance, $"y[{r},{o}] = {y[r * outFeatures + o]}, expected {sum}");
            }
        }
    }

    [Fact]
    public void Strided_batched_gemm_multiplies_each_batch()
    {
        var context = RequireCublas();
        using var stream = new CudaStream(context);
        using var cublas = new CublasHandle(context);
        cublas.SetStream(stream);
        const int Batches = 3, M = 5, N = 7, K = 9;
        // Column-major per batch: A (M,K), B (K,N), C (M,N).
        var (aBits, a) = Quantize(GpuGuard.RandomFloats(Batches * M * K, seed: 20), CudaDataType.R_16F);
        var (bBits, b) = Quantize(GpuGuard.RandomFloats(Batches * K * N, seed: 21), CudaDataType.R_16F);
        using var deviceA = new DeviceBuffer(context, a.Length * sizeof(ushort));
        using var deviceB = new DeviceBuffer(context, b.Length * sizeof(ushort));
        using var deviceC = new DeviceBuffer(context, Batches * M * N * sizeof(float));
        deviceA.CopyFromHost<ushort>(aBits, stream);
        deviceB.CopyFromHost<ushort>(bBits, stream);

        cublas.GemmStridedBatchedEx(
            CublasOperation.N, CublasOperation.N, M, N, K,
            1f, deviceA.Pointer, CudaDataType.R_16F, M, M * K,
            deviceB.Pointer, CudaDataType.R_16F, K, K * N,
            0f, deviceC.Pointer, CudaDataType.R_32F, M, M * N,
            Batches);
        var c = new float[Batches * M * N];
        deviceC.CopyToHost<float>(c, stream);
        stream.Synchronize();

        for (var batch = 0; batch < Batches; batch++)
        {
            for (var col = 0; col < N; col++)
            {
                for (var row = 0; row < M; row++)
                {
                    double sum = 0;
                    for (var k = 0; k < K; k++)
                    {
                        sum += (double)a[batch * M * K + k * M + row] * b[batch * K * N + col * K + k];
                    }

                    Assert.Equal(sum, c[batch * M * N + col * M + row], 1e-4);
                }
            }
        }
    }

    [Fact]
    public void Handles_report_versions_and_accept_a_math_mode()
    {
        var context = RequireCublas();
        using var cublas = new CublasHandle(context);
        using var lt = new CublasLtHandle(context);

        cublas.SetMathMode(CublasMathMode.Pedantic);

        Assert.True(cublas.Version >= 11_0000, $"cuBLAS version {cublas.Version}");
        Assert.True(CublasLtHandle.Version >= 11_0000, $"cuBLASLt version {CublasLtHandle.Version}");
        Assert.False(lt.IsInvalid);
    }
}
