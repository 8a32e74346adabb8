using RawInfer.Models.Gguf;
using Xunit;

namespace RawInfer.Models.Tests.Gguf;

public sealed class GgufRoundTripTests
{
    [Fact]
    public void Every_metadata_type_reads_back_as_written()
    {
        var values = new Dictionary<string, object>
        {
            ["t.u8"] = (byte)200,
            ["t.i8"] = (sbyte)-100,
            ["t.u16"] = (ushort)60000,
            ["t.i16"] = (short)-30000,
            ["t.u32"] = 4_000_000_000u,
            ["t.i32"] = -2_000_000_000,
            ["t.f32"] = 3.25f,
            ["t.bool"] = true,
            ["t.string"] = "héllo ▁ wörld",
            ["t.u64"] = ulong.MaxValue - 7,
            ["t.i64"] = long.MinValue + 3,
            ["t.f64"] = -1.0 / 3.0,
            ["a.u8"] = new byte[] { 1, 2, 255 },
            ["a.i8"] = new sbyte[] { -1, 0, 127 },
            ["a.u16"] = new ushort[] { 7, 65535 },
            ["a.i16"] = new short[] { -7, 7 },
            ["a.u32"] = new uint[] { 1, 2, 3 },
            ["a.i32"] = new[] { -1, 0, 1 },
            ["a.f32"] = new[] { 0.5f, -0.25f },
            ["a.bool"] = new[] { true, false, true },
            ["a.string"] = new[] { "a", "", "▁b" },
            ["a.u64"] = new ulong[] { 0, ulong.MaxValue },
            ["a.i64"] = new long[] { long.MinValue, long.MaxValue },
            ["a.f64"] = new[] { 1e300, -1e-300 },
            ["a.empty"] = Array.Empty<float>(),
            ["a.nested"] = new Array[] { new[] { 1, 2 }, new[] { "x", "y" }, new Array[] { new byte[] { 9 } } },
        };

        byte[] image = GgufTestFiles.Write(w =>
        {
            foreach (var (key, value) in values)
            {
                w.AddMetadata(key, value);
            }
        });

        using var file = GgufFile.Parse(image);
        Assert.Equal(3u, file.Version);
        Assert.Equal(values.Keys, file.Metadata.Keys);
        foreach (var (key, value) in values)
        {
            Assert.Equal(GgufValues.TypeOf(value), GgufValues.TypeOf(file.Metadata[key]));
            AssertSameValue(value, file.Metadata[key]);
        }
    }

    [Theory]
    [InlineData(TensorType.F32, 0.0)]
    [InlineData(TensorType.F16, 1e-3)]
    [InlineData(TensorType.BF16, 8e-3)]
    [InlineData(TensorType.Q8_0, 1e-2)]
    public void Each_tensor_type_round_trips_within_its_precision(TensorType type, double relativeTolerance)
    {
        const int rows = 3;
        const int cols = 64;
        var random = new Random(5);
        var data = new float[rows * cols];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (random.NextSingle() * 4) - 2;
        }

        int rowBytes = TensorEncoding.RowBytes(type, cols);
        var encoded = new byte[rows * rowBytes];
        for (int r = 0; r < rows; r++)
        {
            TensorEncoding.EncodeRow(data.AsSpan(r * cols, cols), type, encoded.AsSpan(r * rowBytes, rowBytes));
        }

        using var stream = new MemoryStream();
        using (var w = new GgufWriter(stream, leaveOpen: true))
        {
            w.AddMetadata("general.name", "roundtrip");
            w.AddTensor("small", TensorType.F32, 5);
            w.AddTensor("m", type, cols, rows);
            w.WriteHeader();
            w.WriteTensorData(new byte[20]);
            w.WriteTensorData(encoded);
            w.Finish();
        }

        using var file = GgufFile.Parse(stream.ToArray());
        var info = file.FindTensor("m")!;
        Assert.Equal((uint)type, info.TypeId);
        Assert.Equal(new long[] { cols, rows }, info.Dimensions);
        Assert.Equal(0, info.FileOffset % 32);
        Assert.Equal(encoded, file.TensorBytes(info).ToArray());
        var weight = file.GetWeight("m");
        Assert.Equal((rows, cols, type), (weight.Rows, weight.Cols, weight.Type));
        var decoded = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            TensorEncoding.DecodeRow(file.TensorBytes(info).Slice(r * rowBytes, rowBytes), type, decoded);
            for (int c = 0; c < cols; c++)
            {
                Assert.True(Math.Abs(decoded[c] - data[(r * cols) + c]) <= relativeTolerance * 2 + 1e-7, $"{type} [{r},{c}]");
            }
        }
    }

    [Fact]
    public void Custom_alignment_is_written_and_honoured()
    {
        using var stream = new MemoryStream();
        using (var w = new GgufWriter(stream, alignment: 64, leaveOpen: true))
        {
            w.AddTensor("a", TensorType.F32, 3);
            w.AddTensor("b", TensorType.F32, 3);
            w.WriteHeader();
            w.WriteTensorData(new byte[24]);
            w.Finish();
        }

        using var file = GgufFile.Parse(stream.ToArray());
        Assert.Equal(64, file.Alignment);
        Assert.Equal(64u, file.GetUInt32("general.alignment"));
        Assert.All(file.Tensors, t => Assert.Equal(0, t.FileOffset % 64));
        Assert.Equal(64, file.Tensors[1].FileOffset - file.Tensors[0].FileOffset);
    }

    [Fact]
    public void Synthetic_model_loads_as_llama_with_the_written_shape()
    {
        var config = GgufTestFiles.TinyConfig(shared: false) with { RopeTheta = 500000f, NormEpsilon = 1e-6f };
        using var temp = GgufTestFiles.ToTempFile(GgufTestFiles.SyntheticModelBytes(TensorType.Q8_0, config: config));
        using var model = GgufLlamaLoader.Load(temp.Path);
        Assert.Equal("gguf", model.Format);
        Assert.Equal(config, model.Config);
        Assert.Equal(TensorType.Q8_0, model.Weights.Layers[0].Wq.Type);
        Assert.Equal(TensorType.F16, model.Weights.Layers[0].W2.Type); // 48 columns: Q8_0 falls back to F16
        Assert.Equal(TensorType.F32, model.Weights.FinalNorm.Type);
        Assert.Equal((259, 32), (model.Weights.Classifier.Rows, model.Weights.Classifier.Cols));
    }

    [Fact]
    public void Synthetic_model_is_deterministic_in_its_seed()
    {
        Assert.Equal(GgufTestFiles.SyntheticModelBytes(TensorType.F16, seed: 3), GgufTestFiles.SyntheticModelBytes(TensorType.F16, seed: 3));
        Assert.NotEqual(GgufTestFiles.SyntheticModelBytes(TensorType.F16, seed: 3), GgufTestFiles.SyntheticModelBytes(TensorType.F16, seed: 4));
    }

    private static void AssertSameValue(object expected, object actual)
    {
        if (expected is Array[] nested)
        {
            var actualNested = Assert.IsType<Array[]>(actual);
            Assert.Equal(nested.Length, actualNested.Length);
            for (int i = 0; i < nested.Length; i++)
            {
                AssertSameValue(nested[i], actualNested[i]);
            }

            return;
        }

        Assert.Equal(expected, actual);
    }
}
