using System.Diagnostics.CodeAnalysis;

namespace RawInfer.Engine.Output;

/// <summary>
/// Hands one request's output from the engine thread to its reader without allocating on the engine thread. The
/// engine stages ids (and logprobs) as tokens are sampled and text as the pipeline releases it, then commits: the
/// staged values move into queues shared with the reader, and a mark records how much each chunk holds. The reader
/// builds the <see cref="TokenChunk"/> objects (and their strings and arrays) on its own thread. A one-slot signal
/// (<see cref="ReaderWakeSignal"/>) wakes the reader; marks live in a fixed ring, and when the reader falls that far
/// behind the newest marks merge (their chunks arrive as one), so nothing grows with the reader's lag.
/// </summary>
internal sealed class RequestOutbox
{
    private const int MarkCapacity = 32;
    private const int MaxInitialTextChars = 1 << 16;

    // A spin lock (a struct, never allocates): monitors and System.Threading.Lock allocate wait state on whichever
    // thread first meets contention, which may be the engine's. Every critical section here is a few copies long.
    private SpinLock _gate = new(enableThreadOwnerTracking: false);
    private readonly ReaderWakeSignal _wake = new();

    // Engine thread only: sampled but not yet delivered (held back with their text, or withheld after a replacement).
    private readonly SpanBuffer<int> _stagedIds = new();
    private readonly SpanBuffer<PositionLogprobs>? _stagedLogprobs;

    // Shared, under _gate: committed and not yet read.
    private readonly SpanBuffer<char> _text;
    private readonly SpanBuffer<int> _ids;
    private readonly SpanBuffer<PositionLogprobs>? _logprobs;
    private readonly ChunkMark[] _marks = new ChunkMark[MarkCapacity]; // ring
    private int _firstMark;
    private int _markCount;
    private FinishReason _finishReason;
    private string? _finishDetail;
    private RequestUsage? _usage;

    /// <param name="maxTokens">The request's generation budget: sizes the shared queues for a reader that falls
    /// behind by the whole output, so that the engine thread never has to grow them.</param>
    /// <param name="withLogprobs">The request asked for logprobs.</param>
    public RequestOutbox(int maxTokens, bool withLogprobs)
    {
        // Ids: at most one per generated token. Text: four characters per token covers most tokenizers' pieces
        // (capped; a longer text grows the queue once). Both small next to the request's KV cache.
        _ids = new SpanBuffer<int>(maxTokens);
        _text = new SpanBuffer<char>(Math.Clamp(maxTokens * 4, 64, MaxInitialTextChars));
        if (withLogprobs)
        {
            _stagedLogprobs = new SpanBuffer<PositionLogprobs>();
            _logprobs = new SpanBuffer<PositionLogprobs>(maxTokens);
        }
    }

    /// <summary>A sampled token whose id (and logprobs) go out no earlier than its text.</summary>
    public void StageId(int tokenId, PositionLogprobs? logprobs)
    {
        _stagedIds.Append(tokenId);
        if (logprobs is not null)
        {
            _stagedLogprobs?.Append(logprobs);
        }
    }

    /// <summary>Drops every staged id and logprob: they will never be delivered.</summary>
    public void WithholdStaged()
    {
        _stagedIds.Clear();
        _stagedLogprobs?.Clear();
    }

    /// <summary>Publishes <paramref name="text"/> (and the staged ids when <paramref name="releaseIds"/>) as a chunk.</summary>
    public void Commit(ReadOnlySpan<char> text, bool releaseIds)
    {
        var taken = false;
        try
        {
            _gate.Enter(ref taken);
            AddMark(MoveIn(text, releaseIds), isFinal: false);
        }
        finally
        {
            Exit(taken);
        }

        _wake.Signal(); // when a wake-up is already pending, the reader takes these marks after it
    }

    /// <summary>
    /// Publishes the final chunk: <paramref name="text"/> and every staged id when <paramref name="completes"/>, nothing
    /// more otherwise; then ends the stream.
    /// </summary>
    public void Complete(ReadOnlySpan<char> text, bool completes, FinishReason reason, string? detail, RequestUsage usage)
    {
        var taken = false;
        try
        {
            _gate.Enter(ref taken);
            var mark = completes ? MoveIn(text, releaseIds: true) : default;
            _finishReason = reason;
            _finishDetail = detail;
            _usage = usage;
            AddMark(mark, isFinal: true);
        }
        finally
        {
            Exit(taken);
        }

        _wake.Close();
    }

    /// <summary>Ends the stream without a final chunk (the engine is stopping on a broken invariant).</summary>
    public void Abandon() => _wake.Close();

    /// <summary>Reader: true when a committed chunk is waiting to be read.</summary>
    public bool HasChunks
    {
        get
        {
            var taken = false;
            try
            {
                _gate.Enter(ref taken);
                return _markCount > 0;
            }
            finally
            {
                Exit(taken);
            }
        }
    }

    /// <summary>Reader: the next chunk, if one is committed.</summary>
    public bool TryRead([NotNullWhen(true)] out TokenChunk? chunk)
    {
        var taken = false;
        try
        {
            _gate.Enter(ref taken);
            if (_markCount == 0)
            {
                chunk = null;
                return false;
            }

            var mark = _marks[_firstMark];
            _firstMark = (_firstMark + 1) % MarkCapacity;
            _markCount--;
            var text = mark.Chars == 0 ? string.Empty : new string(_text.Span[..mark.Chars]);
            _text.RemovePrefix(mark.Chars);
            int[] ids = mark.Ids == 0 ? [] : _ids.Span[..mark.Ids].ToArray();
            _ids.RemovePrefix(mark.Ids);
            PositionLogprobs[]? logprobs = null;
            if (_logprobs is not null)
            {
                logprobs = mark.Logprobs == 0 ? [] : _logprobs.Span[..mark.Logprobs].ToArray();
                _logprobs.RemovePrefix(mark.Logprobs);
            }

            chunk = mark.IsFinal
                ? new TokenChunk(text, ids, logprobs, _finishReason, _finishDetail, _usage)
                : new TokenChunk(text, ids, logprobs);
            return true;
        }
        finally
        {
            Exit(taken);
        }
    }

    /// <summary>Reader: waits until a chunk may have been committed; false once the stream has ended and been read.</summary>
    public ValueTask<bool> WaitToReadAsync() => _wake.WaitAsync(); // consumed before TryRead, so no commit goes unnoticed

    private void Exit(bool taken)
    {
        if (taken)
        {
            _gate.Exit(useMemoryBarrier: false);
        }
    }

    private ChunkMark MoveIn(ReadOnlySpan<char> text, bool releaseIds)
    {
        _text.Append(text);
        var mark = new ChunkMark(text.Length, 0, 0, false);
        if (releaseIds)
        {
            _ids.Append(_stagedIds.Span);
            mark = mark with { Ids = _stagedIds.Count };
            _stagedIds.Clear();
            if (_stagedLogprobs is not null)
            {
                _logprobs!.Append(_stagedLogprobs.Span);
                mark = mark with { Logprobs = _stagedLogprobs.Count };
                _stagedLogprobs.Clear();
            }
        }

        return mark;
    }

    private void AddMark(ChunkMark mark, bool isFinal)
    {
        mark = mark with { IsFinal = isFinal };
        if (_markCount == MarkCapacity)
        {
            // The reader is far behind: the newest mark absorbs this one, so the ring never grows.
            var last = (_firstMark + _markCount - 1) % MarkCapacity;
            var merged = _marks[last];
            _marks[last] = new ChunkMark(merged.Chars + mark.Chars, merged.Ids + mark.Ids, merged.Logprobs + mark.Logprobs, isFinal);
            return;
        }

        _marks[(_firstMark + _markCount) % MarkCapacity] = mark;
        _markCount++;
    }

    /// <summary>One committed chunk: how many characters, ids and logprobs of the shared queues it holds.</summary>
    private readonly record struct ChunkMark(int Chars, int Ids, int Logprobs, bool IsFinal);
}
