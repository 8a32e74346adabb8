using System.Runtime.InteropServices;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Threading;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>
/// The matrix-vector job as the transformer runs it (input prepared once per type, rows split into one share per
/// thread, with or without taking the others' tails, or handed out in chunks, over 1-3 threads, three products at
/// once) against a float64 scalar reference on the decoded weights, odd sizes, fixed seeds. Tolerance: |y − ref| ≤ 1e-5·Σ|w·x| + 1e-6 (only summation order differs; for Q8_0 the
/// reference uses the int8-rounded x, which the kernel multiplies exactly). The chunked result must also equal
/// the single-threaded one bit for bit: each row is one dot product with one summation order.
/// </summary>
[Collection(KernelSwitches.Name)] // toggles ShareTails.Enabled
public sealed unsafe class MatVecJobTests
{
    public static TheoryData<TensorType, int, int> Shapes()
    {
        var data = new TheoryData<TensorType, int, int>();
        foreach (var rows in KernelTestData.Sizes)
        {
            foreach (var cols in KernelTestData.Sizes)
            {
                data.Add(TensorType.F32, rows, cols);
                data.Add(TensorType.F16, rows, cols);
                data.Add(TensorType.BF16, rows, cols);
            }

            foreach (var cols in new[] { 32, 544, 1056 })
            {
                data.Add(TensorType.Q8_0, rows, cols);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Chunked_products_match_the_reference_and_the_single_thread(TensorType type, int rows, int cols)
    {
        var random = new Random((rows * 31) + cols);
        var x = new float[cols];
        for (var i = 0; i < cols; i++)
        {
            x[i] = (random.NextSingle() * 8) - 4;
        }

        using var a = new Encoded(type, rows, cols, random);
        using var b = new Encoded(type, rows + 3, cols, random);
        using var c = new Encoded(type, 5, cols, random);
        var xUsed = type == TensorType.Q8_0 ? RoundTrip(x) : x;
        var single = new[] { new float[rows], new float[rows + 3], new float[5] };
        var slicesBefore = MatVecJob.SliceChunks;
        var stealBefore = ShareTails.Enabled;
        try
        {
            foreach (var (slices, steal, threads) in new[] { (false, false, 1), (false, true, 2), (false, true, 3), (false, false, 2), (false, false, 3), (true, false, 2), (true, false, 3) })
            {
                MatVecJob.SliceChunks = slices;
                ShareTails.Enabled = steal;
                var y = new[] { Pinned(rows), Pinned(rows + 3), Pinned(5) };
                using var pool = new CpuWorkerPool(threads);
                var job = new MatVecJob();
                fixed (float* px = x)
                {
                    job.Reset(px).Add(a.Tensor, Ptr(y[0])).Add(b.Tensor, Ptr(y[1])).Add(c.Tensor, Ptr(y[2]));
                    pool.Run(job);
                }

                var tensors = new[] { a, b, c };
                for (var m = 0; m < 3; m++)
                {
                    AssertClose(tensors[m], xUsed, y[m]);
                    if (threads == 1)
                    {
                        y[m].CopyTo(single[m], 0);
                    }
                    else
                    {
                        Assert.Equal(single[m], y[m]);
                    }
                }
            }
        }
        finally
        {
            MatVecJob.SliceChunks = slicesBefore;
            ShareTails.Enabled = stealBefore;
        }
    }

    [Theory]
    [InlineData(TensorType.F16, 2)]
    [InlineData(TensorType.F16, 3)]
    [InlineData(TensorType.Q8_0, 3)]
    [InlineData(TensorType.F32, 2)]
    public void A_thread_that_finds_the_other_shares_unclaimed_computes_them_once(TensorType type, int shares)
    {
        // What happens when a worker starts late: the first thread runs its own share, then takes every unit of
        // the others from the back. The shares' own chunks, run afterwards, must find nothing left (the output,
        // poisoned in between, stays poisoned), and the rows must carry the single-threaded bits. The products
        // span several 64 KiB units per share, so the front and back claims meet inside a product.
        var random = new Random(11 + shares);
        const int cols = 1056;
        var x = new float[cols];
        for (var i = 0; i < cols; i++)
        {
            x[i] = (random.NextSingle() * 8) - 4;
        }

        int[] rows = [1203, 67, 517];
        var tensors = rows.Select(r => new Encoded(type, r, cols, random)).ToArray();
        var stealBefore = ShareTails.Enabled;
        try
        {
            var single = rows.Select(r => new float[r]).ToArray();
            var stolen = rows.Select(Pinned).ToArray();
            fixed (float* px = x)
            {
                ShareTails.Enabled = false;
                var reference = rows.Select(Pinned).ToArray();
                var job = new MatVecJob().Reset(px);
                for (var m = 0; m < 3; m++)
                {
                    job.Add(tensors[m].Tensor, Ptr(reference[m]));
                }

                job.Execute(0, 1);
                for (var m = 0; m < 3; m++)
                {
                    reference[m].CopyTo(single[m], 0);
                }

                ShareTails.Enabled = true;
                job = new MatVecJob().Reset(px);
                for (var m = 0; m < 3; m++)
                {
                    job.Add(tensors[m].Tensor, Ptr(stolen[m]));
                }

                Assert.Equal(shares, job.ChunkCount(shares));
                job.ExecuteChunk(0, shares);
                for (var m = 0; m < 3; m++)
                {
                    Assert.Equal(single[m], stolen[m]);
                    stolen[m].AsSpan().Fill(float.NaN);
                }

                for (var share = 1; share < shares; share++)
                {
                    job.ExecuteChunk(share, shares);
                }

                Assert.All(stolen, y => Assert.All(y, v => Assert.True(float.IsNaN(v))));
            }
        }
        finally
        {
            ShareTails.Enabled = stealBefore;
            foreach (var t in tensors)
            {
                t.Dispose();
            }
        }
    }

    [Fact]
    public void F16_handles_subnormal_and_extreme_weights_with_large_and_tiny_inputs()
    {
        // Halves from the subnormal range to the largest finite value, inputs from 1e-20 to 1e4: the kernel's
        // conversion (integer rebias for normal halves, a masked subtraction for subnormal ones) must neither
        // overflow nor lose the small terms.
        float[] magnitudes = [5.96e-8f, 3e-6f, 6.1e-5f, 1e-3f, 0.5f, 1f, 300f, 65504f];
        const int cols = 257;
        var random = new Random(5);
        var weights = new float[4 * cols];
        var x = new float[cols];
        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] = magnitudes[random.Next(magnitudes.Length)] * (random.Next(2) == 0 ? -1 : 1);
        }

        for (var i = 0; i < cols; i++)
        {
            x[i] = (float)Math.Pow(10, (random.NextDouble() * 24) - 20) * (random.Next(2) == 0 ? -1 : 1);
        }

        using var m = new Encoded(TensorType.F16, 4, cols, weights);
        var y = new float[4];
        MatVec.Rows(m.Tensor, x, y, 0, 4);
        AssertClose(m, x, y);
        MatVecF16.Rows(m.Tensor, x, y, 0, 4);
        AssertClose(m, x, y);
    }

    [Fact]
    public void Vector_activation_quantization_equals_the_scalar_definition_including_ties()
    {
        // Blocks whose max is 127 have scale 1, so k + 0.5 inputs are exact ties (rounded away from zero).
        var random = new Random(9);
        var x = new float[32 * 40];
        for (var b = 0; b < 40; b++)
        {
            for (var i = 0; i < 32; i++)
            {
                x[(b * 32) + i] = b % 2 == 0
                    ? random.Next(-254, 255) / 2f
                    : ((random.NextSingle() * 2) - 1) * (float)Math.Pow(10, (b % 7) - 3);
            }

            if (b % 2 == 0)
            {
                x[b * 32] = 127f;
            }
        }

        x.AsSpan(32 * 5, 32).Clear(); // an all-zero block: scale 0
        var q = new sbyte[x.Length];
        var scales = new float[40];
        var qRef = new sbyte[x.Length];
        var scalesRef = new float[40];
        MatVecQ8_0.QuantizeActivations(x, q, scales);
        MatVecQ8_0.QuantizeActivationsScalar(x, qRef, scalesRef);
        Assert.Equal(qRef, q);
        Assert.Equal(scalesRef, scales);
    }

    private static void AssertClose(Encoded m, float[] x, float[] y)
    {
        var row = new float[m.Tensor.Cols];
        for (var r = 0; r < m.Tensor.Rows; r++)
        {
            m.Decode(r, row);
            double reference = 0, magnitude = 0;
            for (var j = 0; j < row.Length; j++)
            {
                reference += (double)row[j] * x[j];
                magnitude += Math.Abs((double)row[j] * x[j]);
            }

            Assert.True(Math.Abs(y[r] - reference) <= (1e-5 * magnitude) + 1e-6, $"{m.Tensor.Type} row {r}: {y[r]} vs {reference}");
        }
    }

    private static float[] RoundTrip(float[] x)
    {
        var q = new sbyte[x.Length];
        var scales = new float[x.Length / 32];
        MatVecQ8_0.QuantizeActivationsScalar(x, q, scales);
        var back = new float[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            back[i] = q[i] * scales[i / 32];
        }

        return back;
    }

    private static float[] Pinned(int length) => GC.AllocateArray<float>(length, pinned: true);

    private static float* Ptr(float[] pinned) => (float*)Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0);

    /// <summary>A matrix encoded row by row into native memory, as it sits in a mapped model file.</summary>
    private sealed class Encoded : IDisposable
    {
        private readonly byte* _data;
        private readonly int _rowBytes;

        public Encoded(TensorType type, int rows, int cols, Random random)
            : this(type, rows, cols, RandomWeights(rows * cols, random))
        {
        }

        public Encoded(TensorType type, int rows, int cols, float[] weights)
        {
            _rowBytes = TensorEncoding.RowBytes(type, cols);
            _data = (byte*)NativeMemory.AlignedAlloc((nuint)((long)_rowBytes * rows), 64);
            for (var r = 0; r < rows; r++)
            {
                TensorEncoding.EncodeRow(weights.AsSpan(r * cols, cols), type, new Span<byte>(_data + ((long)r * _rowBytes), _rowBytes));
            }

            Tensor = new WeightTensor(_data, type, rows, cols);
        }

        public WeightTensor Tensor { get; }

        public void Decode(int row, float[] dst) =>
            TensorEncoding.DecodeRow(new ReadOnlySpan<byte>(_data + ((long)row * _rowBytes), _rowBytes), Tensor.Type, dst);

        public void Dispose() => NativeMemory.AlignedFree(_data);

        private static float[] RandomWeights(int count, Random random)
        {
            var w = new float[count];
            for (var i = 0; i < count; i++)
            {
                w[i] = (random.NextSingle() * 2) - 1;
            }

            return w;
        }
    }
}
