namespace RawInfer.Safety.DenyList;

/// <summary>
/// Aho-Corasick automaton over normalized patterns: all patterns in one pass, one character at a time. Besides
/// matches, a state tells how long the longest text suffix is that could still grow into a pattern (its depth), which
/// is exactly what a streaming scanner must hold back.
/// </summary>
internal sealed class PatternMatcher
{
    private readonly List<Dictionary<char, int>> _next = [];
    private readonly List<int> _depth = [];
    private readonly List<int> _terminal = []; // index of the pattern ending exactly here, or -1
    private int[] _fail = [];
    private int[] _output = []; // pattern index of the longest pattern that is a suffix of this state, or -1

    /// <summary>Builds the automaton. Patterns must already be normalized, non-empty and free of edge spaces.</summary>
    public PatternMatcher(IReadOnlyList<string> normalizedPatterns)
    {
        Patterns = normalizedPatterns;
        AddNode(0);
        for (var p = 0; p < normalizedPatterns.Count; p++)
        {
            var node = 0;
            foreach (var c in normalizedPatterns[p])
            {
                if (!_next[node].TryGetValue(c, out var child))
                {
                    child = AddNode(_depth[node] + 1);
                    _next[node][c] = child;
                }

                node = child;
            }

            if (_terminal[node] < 0)
            {
                _terminal[node] = p;
            }

            MaxPatternLength = Math.Max(MaxPatternLength, normalizedPatterns[p].Length);
        }

        BuildLinks();
    }

    public IReadOnlyList<string> Patterns { get; }

    public int MaxPatternLength { get; }

    public bool IsEmpty => Patterns.Count == 0;

    /// <summary>The state after reading <paramref name="c"/> in <paramref name="state"/> (0 = start).</summary>
    public int Step(int state, char c)
    {
        while (true)
        {
            if (_next[state].TryGetValue(c, out var child))
            {
                return child;
            }

            if (state == 0)
            {
                return 0;
            }

            state = _fail[state];
        }
    }

    /// <summary>Length of the longest text suffix that is a prefix of some pattern.</summary>
    public int Depth(int state) => _depth[state];

    /// <summary>Index of the longest pattern ending at this state, or -1.</summary>
    public int MatchAt(int state) => _output[state];

    /// <summary>First match in a whole normalized text: (start, pattern index), or (-1, -1).</summary>
    public (int Start, int Pattern) FindFirst(ReadOnlySpan<char> normalized)
    {
        var state = 0;
        for (var i = 0; i < normalized.Length; i++)
        {
            state = Step(state, normalized[i]);
            var p = _output[state];
            if (p >= 0)
            {
                return (i + 1 - Patterns[p].Length, p);
            }
        }

        return (-1, -1);
    }

    private int AddNode(int depth)
    {
        _next.Add([]);
        _depth.Add(depth);
        _terminal.Add(-1);
        return _next.Count - 1;
    }

    private void BuildLinks()
    {
        _fail = new int[_next.Count];
        _output = new int[_next.Count];
        _output[0] = -1;
        var queue = new Queue<int>();
        foreach (var child in _next[0].Values)
        {
            _fail[child] = 0;
            _output[child] = _terminal[child];
            queue.Enqueue(child);
        }

        // Breadth first, so a node's failure target (shallower) is finished before the node.
        while (queue.Count > 0)
        {
            var node = queue.Dequeue();
            foreach (var (c, child) in _next[node])
            {
                var f = _fail[node];
                while (f != 0 && !_next[f].ContainsKey(c))
                {
                    f = _fail[f];
                }

                _fail[child] = _next[f].TryGetValue(c, out var target) && target != child ? target : 0;
                _output[child] = _terminal[child] >= 0 ? _terminal[child] : _output[_fail[child]];
                queue.Enqueue(child);
            }
        }
    }
}
