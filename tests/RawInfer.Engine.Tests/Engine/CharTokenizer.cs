using System.Text;
using RawInfer.Tokenizers;

namespace RawInfer.Engine.Tests.Engine;

/// <summary>A one-character-per-token vocabulary of 64 ids (0 unknown, 1 BOS, 2 EOS) for the fake model.</summary>
internal sealed class CharTokenizer : ITokenizer
{
    public const string Alphabet = " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567";

    private static readonly byte[] Bytes = Encoding.ASCII.GetBytes(Alphabet);

    public int VocabSize => 3 + Alphabet.Length;

    public int BosId => 1;

    public int EosId => 2;

    public int[] Encode(string text, bool addBos, bool addEos)
    {
        var ids = new List<int>();
        if (addBos)
        {
            ids.Add(BosId);
        }

        foreach (var c in text)
        {
            var i = Alphabet.IndexOf(c, StringComparison.Ordinal);
            ids.Add(i < 0 ? 0 : i + 3);
        }

        if (addEos)
        {
            ids.Add(EosId);
        }

        return [.. ids];
    }

    public ReadOnlySpan<byte> TokenBytes(int previousTokenId, int tokenId) =>
        tokenId >= 3 ? Bytes.AsSpan(tokenId - 3, 1) : [];

    public static string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        foreach (var id in ids)
        {
            if (id >= 3)
            {
                text.Append(Alphabet[id - 3]);
            }
        }

        return text.ToString();
    }
}
