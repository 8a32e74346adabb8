namespace RawInfer.Tokenizers;

public sealed partial class BpeTokenizer
{
    public int[] Encode(string text, bool addBos, bool addEos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos && BosId >= 0)
        {
            ids.Add(BosId);
        }

        foreach (string word in _preTokenizer.Split(text))
        {
            EncodeWord(ToByteCharacters(word), ids);
        }

        if (addEos && EosId >= 0)
        {
            ids.Add(EosId);
        }

        return [.. ids];
    }

    /// <summary>Merges the byte characters of one word and appends the resulting ids.</summary>
    private void EncodeWord(string word, List<int> ids)
    {
        if (word.Length == 0)
        {
            return;
        }

        if (_preTokenizer.IgnoreMerges && _ids.TryGetValue(word, out int whole))
        {
            ids.Add(whole);
            return;
        }

        // One symbol per character (GPT-2 byte characters are all in the BMP), linked left to right; a merge
        // widens the left symbol and unlinks the right one.
        var symbols = new Symbol[word.Length];
        for (int i = 0; i < word.Length; i++)
        {
            symbols[i] = new Symbol(i, 1, i - 1, i + 1 < word.Length ? i + 1 : -1);
        }

        // Lowest rank first, then leftmost; stale entries (a side changed since queuing) are skipped.
        var agenda = new PriorityQueue<(int Left, int Right, int LeftLength, int RightLength), (int Rank, int Start)>();
        for (int i = 0; i + 1 < word.Length; i++)
        {
            TryQueue(agenda, symbols, word, i, i + 1);
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
            left.Next = right.Next;
            right.Length = 0;
            if (left.Next >= 0)
            {
                symbols[left.Next].Prev = c.Left;
                TryQueue(agenda, symbols, word, c.Left, left.Next);
            }

            if (left.Prev >= 0)
            {
                TryQueue(agenda, symbols, word, left.Prev, c.Left);
            }
        }

        for (int i = 0; i >= 0; i = symbols[i].Next)
        {
            string piece = word.Substring(symbols[i].Start, symbols[i].Length);
            if (_ids.TryGetValue(piece, out int id))
            {
                ids.Add(id);
                continue;
            }

            // A merge result missing from the vocabulary: fall back to its single characters.
            foreach (char ch in piece)
            {
                if (_ids.TryGetValue(ch.ToString(), out int single))
                {
                    ids.Add(single);
                }
            }
        }
    }

    private void TryQueue(
        PriorityQueue<(int, int, int, int), (int, int)> agenda, Symbol[] symbols, string word, int left, int right)
    {
        var l = symbols[left];
        var r = symbols[right];
        var key = (word.Substring(l.Start, l.Length), word.Substring(r.Start, r.Length));
        if (_mergeRanks.TryGetValue(key, out int rank))
        {
            agenda.Enqueue((left, right, l.Length, r.Length), (rank, l.Start));
        }
    }

    private record struct Symbol(int Start, int Length, int Prev, int Next);
}
