using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;
using Xunit;

namespace RawInfer.Models.Tests.Gguf;

/// <summary>stories260K.bin converted to GGUF: the same shape and, tensor by tensor, the same weights.</summary>
public sealed class Llama2cToGgufTests
{
    [Fact]
    public void F32_conversion_keeps_every_tensor_bit_for_bit_in_llama2c_layout()
    {
        using var temp = new GgufTestFiles.TempFile();
        Llama2cToGguf.Convert(TestPaths.Model("stories260K.bin"), TestPaths.Model("tok512.bin"), temp.Path);
        using var bin = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        using var gguf = GgufLlamaLoader.Load(temp.Path);

        Assert.Equal(bin.Config, gguf.Config);
        foreach (var (expected, actual, name) in Pairs(bin.Weights, gguf.Weights))
        {
            Assert.Equal(TensorType.F32, actual.Type);
            Assert.Equal((expected.Rows, expected.Cols), (actual.Rows, actual.Cols));

            // Q and K included: the identity permutation (see GgufLlamaLoader's remarks on the RoPE layout).
            Assert.True(expected.AsF32().SequenceEqual(actual.AsF32()), $"{name} differs");
        }
    }

    [Theory]
    [InlineData(TensorType.F16, 1e-3)]
    [InlineData(TensorType.BF16, 8e-3)]
    [InlineData(TensorType.Q8_0, 8e-3)]
    public void Reduced_precision_conversion_stays_within_the_type_precision(TensorType dtype, double tolerance)
    {
        using var temp = new GgufTestFiles.TempFile();
        Llama2cToGguf.Convert(TestPaths.Model("stories260K.bin"), TestPaths.Model("tok512.bin"), temp.Path, dtype);
        using var bin = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        using var gguf = GgufLlamaLoader.Load(temp.Path);
        foreach (var (expected, actual, name) in Pairs(bin.Weights, gguf.Weights))
        {
            var wantType = expected.Rows == 1 ? TensorType.F32
                : dtype == TensorType.Q8_0 && expected.Cols % 32 != 0 ? TensorType.F16
                : dtype;
            Assert.Equal(wantType, actual.Type);
            var e = expected.AsF32();
            var row = new float[actual.Cols];
            for (int r = 0; r < actual.Rows; r++)
            {
                DecodeRow(actual, r, row);
                for (int c = 0; c < row.Length; c++)
                {
                    float want = e[(r * actual.Cols) + c];
                    float rowScale = actual.Type == TensorType.Q8_0 ? MaxAbs(e.Slice((r * actual.Cols) + (c / 32 * 32), 32)) : Math.Abs(want);
                    Assert.True(Math.Abs(row[c] - want) <= (tolerance * rowScale) + 1e-6, $"{name}[{r},{c}]: {row[c]} vs {want}");
                }
            }
        }
    }

    [Fact]
    public void Tokenizer_metadata_follows_llama_cpp_conventions()
    {
        using var temp = new GgufTestFiles.TempFile();
        Llama2cToGguf.Convert(TestPaths.Model("stories260K.bin"), TestPaths.Model("tok512.bin"), temp.Path);
        using var file = GgufFile.Open(temp.Path);
        var tokens = file.GetArray<string>("tokenizer.ggml.tokens");
        var types = file.GetArray<int>("tokenizer.ggml.token_type");
        Assert.Equal(512, tokens.Length);
        Assert.Equal(512, file.GetArray<float>("tokenizer.ggml.scores").Length);
        Assert.Equal("llama", file.GetString("tokenizer.ggml.model"));
        Assert.Equal(["<unk>", "<s>", "</s>", "<0x00>"], tokens[..4]);
        Assert.Equal([2, 3, 3, 6], types[..4]);
        Assert.Equal(6, types[258]);
        Assert.Contains(tokens, t => t.StartsWith('\u2581'));
        Assert.DoesNotContain(tokens, t => t.Contains(' ', StringComparison.Ordinal));
        Assert.Equal(1u, file.GetUInt32("tokenizer.ggml.bos_token_id"));
        Assert.True(file.GetBool("tokenizer.ggml.add_bos_token"));
        Assert.Equal(8u, file.GetUInt32("llama.rope.dimension_count"));
    }

    private static unsafe void DecodeRow(WeightTensor w, int row, Span<float> dst)
    {
        int rowBytes = TensorEncoding.RowBytes(w.Type, w.Cols);
        TensorEncoding.DecodeRow(new ReadOnlySpan<byte>(w.Data + ((long)row * rowBytes), rowBytes), w.Type, dst);
    }

    private static float MaxAbs(ReadOnlySpan<float> x)
    {
        float m = 0;
        foreach (float v in x)
        {
            m = Math.Max(m, Math.Abs(v));
        }

        return m;
    }

    private static IEnumerable<(WeightTensor Expected, WeightTensor Actual, string Name)> Pairs(LlamaWeights a, LlamaWeights b)
    {
        yield return (a.TokenEmbedding, b.TokenEmbedding, "token_embd");
        yield return (a.FinalNorm, b.FinalNorm, "output_norm");
        yield return (a.Classifier, b.Classifier, "output");
        for (int l = 0; l < a.Layers.Count; l++)
        {
            var (x, y) = (a.Layers[l], b.Layers[l]);
            yield return (x.AttentionNorm, y.AttentionNorm, $"blk.{l}.attn_norm");
            yield return (x.Wq, y.Wq, $"blk.{l}.attn_q");
            yield return (x.Wk, y.Wk, $"blk.{l}.attn_k");
            yield return (x.Wv, y.Wv, $"blk.{l}.attn_v");
            yield return (x.Wo, y.Wo, $"blk.{l}.attn_output");
            yield return (x.FfnNorm, y.FfnNorm, $"blk.{l}.ffn_norm");
            yield return (x.W1, y.W1, $"blk.{l}.ffn_gate");
            yield return (x.W2, y.W2, $"blk.{l}.ffn_down");
            yield return (x.W3, y.W3, $"blk.{l}.ffn_up");
        }
    }
}
