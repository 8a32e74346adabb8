using System.Buffers;
using System.Text;

namespace RawInfer.Tokenizers;

/// <summary>
/// Turns a stream of token ids into text without ever emitting half a character: bytes of an incomplete
/// UTF-8 sequence at the end are held back until later tokens complete them. Invalid bytes become U+FFFD.
/// One instance per stream; not thread-safe.
/// </summary>
public sealed class IncrementalDetokenizer
{
    private readonly ITokenizer _tokenizer;
    private byte[] _pending = new byte[16];   // bytes not yet turned into text: at most one incomplete sequence between calls
    private int _pendingCount;
    private char[] _chars = new char[32];
    private int _previousTokenId;

    /// <summary>Starts a stream; <paramref name="previousTokenId"/> is the token before the first pushed one (-1: none).</summary>
    public IncrementalDetokenizer(ITokenizer tokenizer, int previousTokenId = -1)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _previousTokenId = previousTokenId;
    }

    /// <summary>Bytes held back because they may start a character that later tokens complete.</summary>
    public int PendingByteCount => _pendingCount;

    /// <summary>Adds a token and returns the text that is now complete (often empty, never half a character).</summary>
    public string Push(int tokenId)
    {
        var chars = PushChars(tokenId);
        return chars.IsEmpty ? string.Empty : new string(chars);
    }

    /// <summary>Emits whatever is held back (an incomplete sequence as U+FFFD) and empties the buffer.</summary>
    public string Flush()
    {
        var chars = FlushChars();
        return chars.IsEmpty ? string.Empty : new string(chars);
    }

    /// <summary>
    /// As <see cref="Push"/>, without allocating: the characters now complete, in this instance's buffer (valid until
    /// the next call). For callers that must not allocate per token (the engine's step thread).
    /// </summary>
    public ReadOnlySpan<char> PushChars(int tokenId)
    {
        var bytes = _tokenizer.TokenBytes(_previousTokenId, tokenId);
        _previousTokenId = tokenId;
        if (bytes.IsEmpty)
        {
            return default;
        }

        if (_pendingCount + bytes.Length > _pending.Length)
        {
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingCount + bytes.Length));
        }

        bytes.CopyTo(_pending.AsSpan(_pendingCount));
        _pendingCount += bytes.Length;
        return Drain(final: false);
    }

    /// <summary>As <see cref="Flush"/>, without allocating (the span is valid until the next call).</summary>
    public ReadOnlySpan<char> FlushChars() => _pendingCount == 0 ? default : Drain(final: true);

    private ReadOnlySpan<char> Drain(bool final)
    {
        // UTF-8 never expands when decoded to UTF-16 code units, so pendingCount chars always suffice.
        if (_chars.Length < _pendingCount)
        {
            _chars = new char[Math.Max(_chars.Length * 2, _pendingCount)];
        }

        var input = _pending.AsSpan(0, _pendingCount);
        int written = 0;
        int consumed = 0;
        while (consumed < input.Length)
        {
            byte b = input[consumed];
            if (b < 0x80)
            {
                _chars[written++] = (char)b;
                consumed++;
                continue;
            }

            var status = Rune.DecodeFromUtf8(input[consumed..], out var rune, out int width);
            if (status == OperationStatus.NeedMoreData && !final)
            {
                break; // a valid prefix of a longer character: wait for the rest
            }

            // Done: the character; InvalidData/NeedMoreData-at-end: U+FFFD for the maximal invalid subpart.
            written += rune.EncodeToUtf16(_chars.AsSpan(written));
            consumed += width;
        }

        int left = input.Length - consumed;
        input[consumed..].CopyTo(_pending);
        _pendingCount = left;
        return _chars.AsSpan(0, written);
    }
}
