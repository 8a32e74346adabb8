using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace RawInfer.Models.Llama2c;

/// <summary>
/// Where every tensor of a llama2.c checkpoint lies, computed from the 28-byte header and checked against the
/// file length. All offsets are in bytes from the start of the file and computed with checked 64-bit arithmetic,
/// so a hostile header can never produce an offset that wraps or points outside the file.
/// </summary>
internal sealed class Llama2cLayout
{
    /// <summary>Seven little-endian int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len.</summary>
    public const int HeaderBytes = 7 * sizeof(int);

    private static readonly string[] HeaderFields =
        { "dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len" };

    private Llama2cLayout(ModelConfig config, long[] offsets, long expectedLength)
    {
        Config = config;
        Offsets = offsets;
        ExpectedLength = expectedLength;
    }

    public ModelConfig Config { get; }

    /// <summary>Start offset of each <see cref="Llama2cTensor"/>, indexed by the enum.</summary>
    public IReadOnlyList<long> Offsets { get; }

    /// <summary>Exact length the file must have.</summary>
    public long ExpectedLength { get; }

    /// <summary>
    /// Parses and validates the header (<paramref name="header"/> holds the file's first bytes, possibly fewer
    /// than 28) and checks the file length. Throws <see cref="ModelFormatException"/> naming field and offset.
    /// </summary>
    public static Llama2cLayout Parse(string path, ReadOnlySpan<byte> header, long fileLength)
    {
        var values = new int[HeaderFields.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var offset = i * sizeof(int);
            if (header.Length < offset + sizeof(int))
            {
                Fail(path, HeaderFields[i], offset, $"file ends after {fileLength} bytes, inside the {HeaderBytes}-byte header");
            }

            values[i] = BinaryPrimitives.ReadInt32LittleEndian(header[offset..]);
        }

        var config = Validate(path, values);
        var (offsets, expected) = ComputeOffsets(config);
        CheckLength(path, offsets, expected, fileLength);
        return new Llama2cLayout(config, offsets, expected);
    }

    /// <summary>Checks a config against the limits a checkpoint header must meet; null when valid, else (field, reason).</summary>
    public static (string Field, string Reason)? CheckLimits(ModelConfig c)
    {
        if (c.Dim <= 0 || c.Dim > ModelLimits.MaxDim)
        {
            return ("dim", $"{c.Dim} is outside 1..{ModelLimits.MaxDim}");
        }

        if (c.HiddenDim <= 0 || c.HiddenDim > ModelLimits.MaxHiddenDim)
        {
            return ("hidden_dim", $"{c.HiddenDim} is outside 1..{ModelLimits.MaxHiddenDim}");
        }

        if (c.NumLayers <= 0 || c.NumLayers > ModelLimits.MaxLayers)
        {
            return ("n_layers", $"{c.NumLayers} is outside 1..{ModelLimits.MaxLayers}");
        }

        if (c.NumHeads <= 0 || c.NumHeads > c.Dim || c.Dim % c.NumHeads != 0)
        {
            return ("n_heads", $"{c.NumHeads} does not divide dim {c.Dim}");
        }

        if ((c.Dim / c.NumHeads) % 2 != 0)
        {
            return ("n_heads", $"head size {c.Dim / c.NumHeads} (dim {c.Dim} / n_heads {c.NumHeads}) is odd; RoPE rotates pairs");
        }

        if (c.NumKvHeads <= 0 || c.NumKvHeads > c.NumHeads || c.NumHeads % c.NumKvHeads != 0)
        {
            return ("n_kv_heads", $"{c.NumKvHeads} does not divide n_heads {c.NumHeads}");
        }

        if (c.VocabSize <= 0 || c.VocabSize > ModelLimits.MaxVocab)
        {
            return ("vocab_size", $"|{c.VocabSize}| is outside 1..{ModelLimits.MaxVocab}");
        }

        if (c.MaxSeqLen <= 0 || c.MaxSeqLen > ModelLimits.MaxSeqLen)
        {
            return ("seq_len", $"{c.MaxSeqLen} is outside 1..{ModelLimits.MaxSeqLen}");
        }

        return null;
    }

    private static ModelConfig Validate(string path, int[] v)
    {
        // vocab_size's sign says whether the classifier is shared; int.MinValue has no positive counterpart.
        var rawVocab = v[5];
        var vocab = rawVocab == int.MinValue ? int.MaxValue : Math.Abs(rawVocab);
        var config = new ModelConfig(v[0], v[1], v[2], v[3], v[4], vocab, v[6], SharedClassifier: rawVocab > 0);
        if (CheckLimits(config) is { } problem)
        {
            Fail(path, problem.Field, Array.IndexOf(HeaderFields, problem.Field) * sizeof(int), problem.Reason);
        }

        return config;
    }

    private static (long[] Offsets, long Expected) ComputeOffsets(ModelConfig c)
    {
        var offsets = new long[(int)Llama2cTensor.Count];
        long offset = HeaderBytes;
        for (var i = 0; i < offsets.Length; i++)
        {
            var tensor = (Llama2cTensor)i;
            var (rows, cols) = Llama2cTensors.Shape(tensor, c);
            long count = checked((long)rows * cols * (Llama2cTensors.IsPerLayer(tensor) ? c.NumLayers : 1));
            if (tensor == Llama2cTensor.Classifier && c.SharedClassifier)
            {
                count = 0;
            }

            offsets[i] = offset;
            offset = checked(offset + (count * sizeof(float)));
        }

        return (offsets, offset);
    }

    private static void CheckLength(string path, long[] offsets, long expected, long fileLength)
    {
        if (fileLength > expected)
        {
            Fail(path, "trailing_bytes", expected, $"file is {fileLength} bytes but the header implies exactly {expected}");
        }

        if (fileLength == expected)
        {
            return;
        }

        // Name the tensor the file ends in: the last one starting before the end (skipping empty tensors).
        var truncated = Llama2cTensor.TokenEmbedding;
        for (var i = 0; i < offsets.Length; i++)
        {
            var end = i + 1 < offsets.Length ? offsets[i + 1] : expected;
            if (end > offsets[i] && offsets[i] < fileLength)
            {
                truncated = (Llama2cTensor)i;
            }
        }

        Fail(
            path,
            Llama2cTensors.Name(truncated),
            offsets[(int)truncated],
            $"file ends at byte {fileLength}, inside this tensor; the header implies {expected} bytes");
    }

    [DoesNotReturn]
    private static void Fail(string path, string field, long offset, string reason) =>
        throw new ModelFormatException($"{path}: llama2.c checkpoint field '{field}' at byte {offset}: {reason}")
        {
            Field = field,
            Offset = offset,
        };
}
