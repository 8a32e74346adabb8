using System.Text.RegularExpressions;

namespace RawInfer.Tokenizers;

/// <summary>
/// Splits text into words before byte-level BPE, as llama.cpp does for a vocabulary's tokenizer.ggml.pre: a
/// chain of regexes, each splitting every piece left by the previous one into matches and the text between
/// them (nothing is dropped). Expressions are llama.cpp's per pre-tokenizer name, compiled once.
/// </summary>
internal sealed class BpePreTokenizer
{
    // GPT-2's pattern without its final "|\s+": the split keeps unmatched runs anyway.
    private const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

    private const string Llama3 =
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static readonly Lazy<Regex[]> Gpt2Chain = new(() => [Compile(Gpt2)]);
    private static readonly Lazy<Regex[]> DigitsThenGpt2Chain = new(() => [Compile(@"\p{N}"), Compile(Gpt2)]);
    private static readonly Lazy<Regex[]> Llama3Chain = new(() => [Compile(Llama3)]);

    private readonly Regex[] _chain;

    private BpePreTokenizer(string name, Regex[] chain, bool ignoreMerges)
    {
        Name = name;
        _chain = chain;
        IgnoreMerges = ignoreMerges;
    }

    /// <summary>The tokenizer.ggml.pre name.</summary>
    public string Name { get; }

    /// <summary>
    /// A word that is itself a vocabulary piece becomes that token without merging (Llama 3's
    /// ignore_merges; llama.cpp sets it for the llama3 pre-tokenizer).
    /// </summary>
    public bool IgnoreMerges { get; }

    /// <summary>The pre-tokenizer for <paramref name="name"/>, or null when RawInfer does not know it.</summary>
    public static BpePreTokenizer? ForName(string name) => name switch
    {
        "gpt-2" or "gpt2" or "mpt" or "olmo" or "jais" => new(name, Gpt2Chain.Value, ignoreMerges: false),
        "starcoder" or "refact" or "command-r" or "smollm" or "codeshell" or "exaone" or "minerva-7b"
            => new(name, DigitsThenGpt2Chain.Value, ignoreMerges: false),
        "llama3" or "llama-v3" or "llama-bpe" or "falcon3" => new(name, Llama3Chain.Value, ignoreMerges: true),
        _ => null,
    };

    /// <summary>Names <see cref="ForName"/> accepts, for error messages.</summary>
    public static string KnownNames =>
        "gpt-2, mpt, olmo, jais, starcoder, refact, command-r, smollm, codeshell, exaone, minerva-7b, llama3, llama-v3, llama-bpe, falcon3";

    /// <summary>Splits <paramref name="text"/> into words, in order, covering all of it.</summary>
    public List<string> Split(string text)
    {
        var pieces = new List<string> { text };
        foreach (var regex in _chain)
        {
            var next = new List<string>(pieces.Count * 2);
            foreach (string piece in pieces)
            {
                int at = 0;
                for (var m = regex.Match(piece); m.Success; m = m.NextMatch())
                {
                    if (m.Length == 0)
                    {
                        continue;
                    }

                    if (m.Index > at)
                    {
                        next.Add(piece[at..m.Index]);
                    }

                    next.Add(m.Value);
                    at = m.Index + m.Length;
                }

                if (at < piece.Length)
                {
                    next.Add(piece[at..]);
                }
            }

            pieces = next;
        }

        return pieces;
    }

    private static Regex Compile(string pattern) => new(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
}
