using System.Buffers;
using System.Text;
using RawInfer.Tokenizers;

namespace RawInfer.Engine.Output;

/// <summary>
/// Turns one request's generated token ids into whole characters, appended to a caller's buffer: the bytes of an
/// incomplete UTF-8 sequence are held until later tokens complete it; invalid bytes become U+FFFD. The same rules as
/// <see cref="IncrementalDetokenizer"/>, but writing into a reused buffer instead of returning a string per token, so
/// the engine thread allocates nothing per token.
/// </summary>
internal sealed class StreamingTextDecoder
{
    private readonly ITokenizer _tokenizer;
    private byte[] _pending = new byte[16]; // bytes not yet turned into text: at most one incomplete sequence between calls
    private int _pendingCount;
    private int _previousTokenId;

    /// <summary>Starts a stream; <paramref name="previousTokenId"/> is the token before the first pushed one (-1: none).</summary>
    public StreamingTextDecoder(ITokenizer tokenizer, int previousTokenId)
    {
        _tokenizer = tokenizer;
        _previousTokenId = previousTokenId;
    }

    /// <summary>Bytes held back because they may start a character that later tokens complete.</summary>
    public int PendingByteCount => _pendingCount;

    /// <summary>Adds a token's bytes and appends the characters now complete to <paramref name="output"/>.</summary>
    public void Push(int tokenId, SpanBuffer<char> output)
    {
        var bytes = _tokenizer.TokenBytes(_previousTokenId, tokenId);
        _previousTokenId = tokenId;
        if (bytes.IsEmpty)
        {
            return;
        }

        if (_pendingCount + bytes.Length > _pending.Length)
        {
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingCount + bytes.Length));
        }

        bytes.CopyTo(_pending.AsSpan(_pendingCount));
        _pendingCount += bytes.Length;
        Drain(output, final: false);
    }

    /// <summary>Appends whatever is held back (an incomplete sequence as U+FFFD) and empties the byte buffer.</summary>
    public void Flush(SpanBuffer<char> output)
    {
        if (_pendingCount > 0)
        {
            Drain(output, final: true);
        }
    }

    private void Drain(SpanBuffer<char> output, bool final)
    {
        // UTF-8 never takes fewer bytes than the UTF-16 code units it decodes to, so pendingCount chars suffice.
        var chars = output.GetAppendSpan(_pendingCount);
        var input = _pending.AsSpan(0, _pendingCount);
        var written = 0;
        var consumed = 0;
        while (consumed < input.Length)
        {
            var b = input[consumed];
            if (b < 0x80)
            {
                chars[written++] = (char)b;
                consumed++;
                continue;
            }

            var status = Rune.DecodeFromUtf8(input[consumed..], out var rune, out var width);
            if (status == OperationStatus.NeedMoreData && !final)
            {
                break; // a valid prefix of a longer character: wait for the rest
            }

            // Done: the character; InvalidData, or NeedMoreData at the end: U+FFFD for the maximal invalid subpart.
            written += rune.EncodeToUtf16(chars[written..]);
            consumed += width;
        }

        output.Advance(written);
        input[consumed..].CopyTo(_pending);
        _pendingCount = input.Length - consumed;
    }
}
