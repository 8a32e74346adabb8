using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using RawInfer.Models.Llama2c;

namespace RawInfer.Models.Gguf;

/// <summary>
/// Converts a llama2.c checkpoint and its tokenizer file into a llama-architecture GGUF file that both llama.cpp
/// and RawInfer run. Q/K rows are copied as stored: llama2.c's pair layout is the one llama.cpp's llama RoPE
/// expects (see <see cref="GgufLlamaLoader"/>), exactly what llama.cpp's own convert-llama2c-to-ggml does.
/// </summary>
public static class Llama2cToGguf
{
    /// <summary>The U+2581 "lower one eighth block" SentencePiece spells spaces with.</summary>
    public const char SpaceSymbol = '\u2581';

    /// <summary>
    /// Writes <paramref name="outPath"/> from the checkpoint and tokenizer; matrices in <paramref name="dtype"/>
    /// (F32, F16, BF16 or Q8_0), norms in F32.
    /// </summary>
    /// <exception cref="ModelFormatException">The checkpoint or the tokenizer file is malformed.</exception>
    public static unsafe void Convert(string checkpointPath, string tokenizerPath, string outPath, TensorType dtype = TensorType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(outPath);
        using var model = Llama2cCheckpoint.Load(checkpointPath);
        var c = model.Config;
        var vocab = ReadTokenizer(tokenizerPath, c.VocabSize);
        var w = model.Weights;
        string name = Path.GetFileNameWithoutExtension(checkpointPath);
        GgufLlamaWriter.Write(outPath, c, dtype, name, vocab, (tensor, layer, row, dst) =>
        {
            var source = tensor switch
            {
                LlamaTensor.TokenEmbedding => w.TokenEmbedding,
                LlamaTensor.Classifier => w.Classifier,
                LlamaTensor.FinalNorm => w.FinalNorm,
                LlamaTensor.AttentionNorm => w.Layers[layer].AttentionNorm,
                LlamaTensor.Wq => w.Layers[layer].Wq,
                LlamaTensor.Wk => w.Layers[layer].Wk,
                LlamaTensor.Wv => w.Layers[layer].Wv,
                LlamaTensor.Wo => w.Layers[layer].Wo,
                LlamaTensor.FfnNorm => w.Layers[layer].FfnNorm,
                LlamaTensor.W1 => w.Layers[layer].W1,
                LlamaTensor.W2 => w.Layers[layer].W2,
                _ => w.Layers[layer].W3,
            };
            source.AsF32().Slice(row * source.Cols, source.Cols).CopyTo(dst);
        });
    }

    /// <summary>
    /// Reads the first <paramref name="vocabSize"/> tokens of a llama2.c tokenizer file (int32 max_token_length,
    /// then per token float32 score, int32 length, bytes) as GGUF vocabulary arrays, classifying tokens the way
    /// llama.cpp's converter does: 0 &lt;unk&gt;, 1 &lt;s&gt;, 2 &lt;/s&gt;, empty pieces control, &lt;0xHH&gt; byte.
    /// </summary>
    internal static GgufLlamaVocabulary ReadTokenizer(string path, int vocabSize)
    {
        byte[] file = File.ReadAllBytes(path);
        var tokens = new string[vocabSize];
        var scores = new float[vocabSize];
        var types = new int[vocabSize];
        int offset = 4;
        if (file.Length < 4)
        {
            throw new ModelFormatException($"{path}: max_token_length at offset 0: file has {file.Length} bytes") { Field = "max_token_length", Offset = 0 };
        }

        for (int id = 0; id < vocabSize; id++)
        {
            if (file.Length - offset < 8)
            {
                throw new ModelFormatException($"{path}: token {id} at offset {offset}: file ends before its score and length") { Field = $"token {id}", Offset = offset };
            }

            float score = BinaryPrimitives.ReadSingleLittleEndian(file.AsSpan(offset));
            int length = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(offset + 4));
            if (length < 0 || length > file.Length - offset - 8)
            {
                throw new ModelFormatException($"{path}: token {id} length at offset {offset + 4}: {length} bytes do not fit the file") { Field = $"token {id}", Offset = offset + 4 };
            }

            string piece = Encoding.UTF8.GetString(file, offset + 8, length);
            offset += 8 + length;
            scores[id] = score;
            (tokens[id], types[id]) = id switch
            {
                0 => ("<unk>", GgufLlamaVocabulary.TypeUnknown),
                1 => ("<s>", GgufLlamaVocabulary.TypeControl),
                2 => ("</s>", GgufLlamaVocabulary.TypeControl),
                _ when piece.Length == 0 => (piece, GgufLlamaVocabulary.TypeControl),
                _ when IsBytePiece(piece) => (piece, GgufLlamaVocabulary.TypeByte),
                _ => (piece.Replace(' ', SpaceSymbol), GgufLlamaVocabulary.TypeNormal),
            };
        }

        return new GgufLlamaVocabulary(tokens, scores, types);
    }

    private static bool IsBytePiece(string piece) =>
        piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
        && byte.TryParse(piece.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out _);
}
