using System.Buffers.Binary;
using RawInfer.Models;

namespace RawInfer.Models.Tests;

/// <summary>Builds checkpoint files byte by byte and computes, independently of the loader, where tensors lie.</summary>
internal static class CheckpointFiles
{
    public const int HeaderBytes = 28;

    public static byte[] Header(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seq)
    {
        var bytes = new byte[HeaderBytes];
        int[] fields = { dim, hidden, layers, heads, kvHeads, vocab, seq };
        for (var i = 0; i < fields.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * 4), fields[i]);
        }

        return bytes;
    }

    /// <summary>Float counts of every tensor in file order, from the llama2.c format description.</summary>
    public static (string Name, long Floats)[] Tensors(ModelConfig c)
    {
        long dim = c.Dim, hidden = c.HiddenDim, layers = c.NumLayers, kvDim = c.KvDim, head = c.HeadDim;
        return new (string, long)[]
        {
            ("token_embedding_table", c.VocabSize * dim),
            ("rms_att_weight", layers * dim),
            ("wq", layers * dim * dim),
            ("wk", layers * dim * kvDim),
            ("wv", layers * dim * kvDim),
            ("wo", layers * dim * dim),
            ("rms_ffn_weight", layers * dim),
            ("w1", layers * hidden * dim),
            ("w2", layers * dim * hidden),
            ("w3", layers * hidden * dim),
            ("rms_final_weight", dim),
            ("freq_cis_real", c.MaxSeqLen * head / 2),
            ("freq_cis_imag", c.MaxSeqLen * head / 2),
            ("wcls", c.SharedClassifier ? 0 : c.VocabSize * dim),
        };
    }

    /// <summary>Byte offset where the named tensor starts.</summary>
    public static long OffsetOf(ModelConfig c, string name)
    {
        long offset = HeaderBytes;
        foreach (var (tensorName, floats) in Tensors(c))
        {
            if (tensorName == name)
            {
                return offset;
            }

            offset += floats * 4;
        }

        throw new ArgumentException(name);
    }

    public static long ExpectedLength(ModelConfig c) => HeaderBytes + (Tensors(c).Sum(t => t.Floats) * 4);
}
