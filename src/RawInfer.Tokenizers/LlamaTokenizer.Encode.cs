using System.Buffers;
using System.Text;

namespace RawInfer.Tokenizers;

public sealed partial class LlamaTokenizer
{
    public int[] Encode(string text, bool addBos, bool addEos)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] utf8 = NormalizeToUtf8(text);

        // One symbol per initial token; a symbol covers bytes [Start, Start+Length) of utf8 and is linked to its
        // neighbours. Merging keeps the left symbol, widens it and unlinks the right one (Length 0 = dead).
        var symbols = new Symbol[Math.Max(utf8.Length, 1)];
        int count = SplitIntoInitialSymbols(utf8, symbols);

        // Candidate merges ordered by score (highest first) then by position (leftmost first), which is exactly
        // llama2.c's "best pair, first on ties" rule. Entries go stale when either side changes; they carry the
        // lengths seen when queued and are skipped when those no longer match.
        var agenda = new PriorityQueue<Candidate, (float NegatedScore, int Start)>();
        for (int i = 0; i + 1 < count; i++)
        {
            TryQueue(agenda, symbols, utf8, i, i + 1);
        }

        while (agenda.TryDequeue(out var c, out _))
        {
            ref var left = ref symbols[c.Left];
            ref var right = ref symbols[c.Right];
            if (left.Length != c.LeftLength || right.Length != c.RightLength || left.Next != c.Right)
            {
                continue;
            }

            left.Length += right.Length;
            left.Id = c.MergedId;
            left.Next = right.Next;
            right.Length = 0;
            if (left.Next >= 0)
            {
                symbols[left.Next].Prev = c.Left;
                TryQueue(agenda, symbols, utf8, c.Left, left.Next);
            }

            if (left.Prev >= 0)
            {
                TryQueue(agenda, symbols, utf8, left.Prev, c.Left);
            }
        }

        var ids = new List<int>(count + 2);
        if (addBos && BosId >= 0)
        {
            ids.Add(BosId);
        }

        for (int i = count > 0 ? 0 : -1; i >= 0; i = symbols[i].Next)
        {
            ids.Add(symbols[i].Id);
        }

        if (addEos && EosId >= 0)
        {
            ids.Add(EosId);
        }

        return [.. ids];
    }

    private byte[] NormalizeToUtf8(string text)
    {
        if (text.Length == 0)
        {
            return [];
        }

        string normalized = _options.SpaceSymbol == ' ' ? text : text.Replace(' ', _options.SpaceSymbol);
        if (_options.AddDummyPrefix)
        {
            normalized = string.Concat(_options.SpaceSymbol.ToString(), normalized);
        }

        // Lone surrogates become U+FFFD here, the only lossy step.
        return Encoding.UTF8.GetBytes(normalized);
    }

    /// <summary>Code points found in the vocabulary become one symbol each; others one byte token per byte.</summary>
    private int SplitIntoInitialSymbols(byte[] utf8, Symbol[] symbols)
    {
        int count = 0;
        for (int at = 0; at < utf8.Length;)
        {
            Rune.DecodeFromUtf8(utf8.AsSpan(at), out _, out int width);
            if (_pieceIdsBySpan.TryGetValue(utf8.AsSpan(at, width), out int id))
            {
                symbols[count] = new Symbol(id, at, width, count - 1, count + 1, Mergeable: true);
                count++;
            }
            else
            {
                for (int b = 0; b < width; b++)
                {
                    int fallback = _options.ByteFallbackBaseId >= 0
                        ? _options.ByteFallbackBaseId + utf8[at + b]
                        : _options.UnknownId;
                    symbols[count] = new Symbol(fallback, at + b, 1, count - 1, count + 1, Mergeable: false);
                    count++;
                    if (_options.ByteFallbackBaseId < 0)
                    {
                        // Without byte fallback the whole code point is one unknown token.
                        symbols[count - 1].Length = width;
                        break;
                    }
                }
            }

            at += width;
        }

        if (count > 0)
        {
            symbols[count - 1].Next = -1;
        }

        return count;
    }

    private void TryQueue(
        PriorityQueue<Candidate, (float, int)> agenda, Symbol[] symbols, byte[] utf8, int left, int right)
    {
        ref readonly var l = ref symbols[left];
        ref readonly var r = ref symbols[right];
        if (!l.Mergeable || !r.Mergeable)
        {
            return;
        }

        // Symbols are contiguous, so the merged piece is a slice of the text: no concatenation, no allocation.
        if (_pieceIdsBySpan.TryGetValue(utf8.AsSpan(l.Start, l.Length + r.Length), out int merged))
        {
            agenda.Enqueue(new Candidate(left, right, l.Length, r.Length, merged), (-_scores[merged], l.Start));
        }
    }

    private record struct Symbol(int Id, int Start, int Length, int Prev, int Next, bool Mergeable);

    private readonly record struct Candidate(int Left, int Right, int LeftLength, int RightLength, int MergedId);
}
