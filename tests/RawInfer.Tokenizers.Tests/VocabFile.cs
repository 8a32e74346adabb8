using System.Buffers.Binary;
using System.Text;
using RawInfer.Tests;
using RawInfer.Tokenizers;

namespace RawInfer.Tokenizers.Tests;

/// <summary>
/// Test-side access to the shared vocabularies. <see cref="PieceIds"/> parses the file independently of the
/// tokenizer so that expected ids come from the file's text, not from the code under test.
/// </summary>
internal static class VocabFile
{
    public const int Tok512Size = 512;
    public const int Llama2Size = 32000;

    private static readonly Lazy<LlamaTokenizer> Tok512Lazy =
        new(() => LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), Tok512Size));

    private static readonly Lazy<LlamaTokenizer> Llama2Lazy =
        new(() => LlamaTokenizer.Load(TestPaths.Model("tokenizer.bin"), Llama2Size));

    private static readonly Lazy<Dictionary<string, int>> Tok512Ids =
        new(() => PieceIds(TestPaths.Model("tok512.bin"), Tok512Size));

    public static LlamaTokenizer Tok512 => Tok512Lazy.Value;

    public static LlamaTokenizer Llama2 => Llama2Lazy.Value;

    /// <summary>Id of a tok512 piece by its text (llama2.c files spell spaces as ' ').</summary>
    public static int Tok512Id(string piece) =>
        Tok512Ids.Value.TryGetValue(piece, out int id) ? id : throw new KeyNotFoundException($"tok512 has no piece '{piece}'");

    public static bool Tok512Has(string piece) => Tok512Ids.Value.ContainsKey(piece);

    private static Dictionary<string, int> PieceIds(string path, int vocab)
    {
        var file = File.ReadAllBytes(path);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        int offset = 4;
        for (int i = 0; i < vocab; i++)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(offset + 4));
            ids.TryAdd(Encoding.UTF8.GetString(file, offset + 8, length), i);
            offset += 8 + length;
        }

        return ids;
    }

    /// <summary>Decodes ids through the incremental detokenizer, as a streaming caller would.</summary>
    public static string Decode(ITokenizer tokenizer, IEnumerable<int> ids)
    {
        var detok = new IncrementalDetokenizer(tokenizer);
        var text = new StringBuilder();
        foreach (int id in ids)
        {
            text.Append(detok.Push(id));
        }

        return text.Append(detok.Flush()).ToString();
    }
}
