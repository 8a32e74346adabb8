using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;

namespace RawInfer.Tokenizers;

/// <summary>
/// SentencePiece-style tokenizer as llama2.c implements it: text is split into UTF-8 code points (missing ones
/// become byte-fallback tokens), then the adjacent pair whose concatenation is the highest-scoring vocabulary piece
/// is merged until no pair merges. Built from a llama2.c tokenizer file (<see cref="Load"/>) or from arrays
/// (GGUF metadata).
/// </summary>
public sealed partial class LlamaTokenizer : ITokenizer
{
    /// <summary>Longest piece a file may declare; llama2.c's own files stay under 64 bytes.</summary>
    public const int MaxPieceBytes = 1 << 16;

    private readonly byte[][] _pieces;            // (vocab) raw piece bytes, in the vocabulary's space convention
    private readonly float[] _scores;             // (vocab) merge priority, higher merges first
    private readonly byte[][] _outputBytes;       // (vocab) bytes a token decodes to
    private readonly bool[] _dropSpaceAfterBos;   // (vocab) piece starts with a space that BOS swallows
    private readonly bool[] _mergeable;           // (vocab) may be produced by a merge or a code-point lookup
    private readonly Dictionary<byte[], int> _pieceIds;
    private readonly Dictionary<byte[], int>.AlternateLookup<ReadOnlySpan<byte>> _pieceIdsBySpan;
    private readonly LlamaTokenizerOptions _options;

    /// <summary>Builds a tokenizer from pieces (raw bytes) and their merge scores.</summary>
    /// <exception cref="TokenizerFormatException">The arrays disagree or a special id is out of range or malformed.</exception>
    public LlamaTokenizer(byte[][] pieces, float[] scores, LlamaTokenizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(options);
        if (pieces.Length != scores.Length || pieces.Length == 0)
        {
            throw new TokenizerFormatException(
                $"vocabulary has {pieces.Length} pieces but {scores.Length} scores; both must be equal and non-zero");
        }

        _pieces = pieces;
        _scores = scores;
        _options = options;
        int vocab = pieces.Length;
        CheckSpecialId(nameof(options.BosId), options.BosId, vocab);
        CheckSpecialId(nameof(options.EosId), options.EosId, vocab);
        CheckSpecialId(nameof(options.UnknownId), options.UnknownId, vocab);
        if (options.ByteFallbackBaseId >= 0)
        {
            CheckByteFallbackPieces(pieces, options.ByteFallbackBaseId);
        }

        _mergeable = new bool[vocab];
        _outputBytes = new byte[vocab][];
        _dropSpaceAfterBos = new bool[vocab];
        Span<byte> spaceSymbol = stackalloc byte[4];
        spaceSymbol = spaceSymbol[..new Rune(options.SpaceSymbol).EncodeToUtf8(spaceSymbol)];
        for (int id = 0; id < vocab; id++)
        {
            if (pieces[id] is null)
            {
                throw new TokenizerFormatException($"piece {id} is null") { TokenIndex = id };
            }

            bool isByte = options.ByteFallbackBaseId >= 0 && id >= options.ByteFallbackBaseId
                && id < options.ByteFallbackBaseId + 256;
            bool isControl = id == options.BosId || id == options.EosId
                || (options.ControlIds is { } control && control.Contains(id));
            _mergeable[id] = !isByte && !isControl && id != options.UnknownId;
            if (isByte)
            {
                _outputBytes[id] = [(byte)(id - options.ByteFallbackBaseId)];
            }
            else if (isControl)
            {
                _outputBytes[id] = [];
            }
            else
            {
                _outputBytes[id] = ReplaceAll(pieces[id], spaceSymbol, " "u8);
                _dropSpaceAfterBos[id] = _outputBytes[id].Length > 0 && _outputBytes[id][0] == (byte)' ';
            }
        }

        _pieceIds = new Dictionary<byte[], int>(vocab, ByteSequenceComparer.Instance);
        for (int id = 0; id < vocab; id++)
        {
            // The first of duplicate pieces wins, as in a sorted-vocabulary binary search that finds any.
            if (_mergeable[id])
            {
                _pieceIds.TryAdd(pieces[id], id);
            }
        }

        _pieceIdsBySpan = _pieceIds.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    public int VocabSize => _pieces.Length;

    public int BosId => _options.BosId;

    public int EosId => _options.EosId;

    /// <summary>Options the tokenizer was built with.</summary>
    public LlamaTokenizerOptions Options => _options;

    /// <summary>The stored bytes of piece <paramref name="id"/> (vocabulary's space convention).</summary>
    public ReadOnlySpan<byte> Piece(int id) => _pieces[id];

    /// <summary>Merge score of piece <paramref name="id"/>.</summary>
    public float Score(int id) => _scores[id];

    /// <summary>Id of the piece spelled exactly <paramref name="utf8Piece"/> (space convention of the vocabulary), or -1.</summary>
    public int PieceId(ReadOnlySpan<byte> utf8Piece) => _pieceIdsBySpan.TryGetValue(utf8Piece, out int id) ? id : -1;

    /// <summary>
    /// Reads a llama2.c tokenizer file: int32 max_token_length, then per token float32 score, int32 byte length
    /// and the bytes. Only the first <paramref name="vocabSize"/> tokens are read.
    /// </summary>
    /// <exception cref="TokenizerFormatException">The file is truncated or a field is out of range.</exception>
    public static LlamaTokenizer Load(string path, int vocabSize, LlamaTokenizerOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        byte[] file = File.ReadAllBytes(path);
        if (file.Length < 4)
        {
            throw new TokenizerFormatException($"{path}: {file.Length} bytes, too short for the max_token_length header at offset 0")
            { Offset = 0 };
        }

        int maxTokenLength = BinaryPrimitives.ReadInt32LittleEndian(file);
        if (maxTokenLength <= 0 || maxTokenLength > MaxPieceBytes)
        {
            throw new TokenizerFormatException(
                $"{path}: max_token_length {maxTokenLength} at offset 0 is outside 1..{MaxPieceBytes}") { Offset = 0 };
        }

        var pieces = new byte[vocabSize][];
        var scores = new float[vocabSize];
        int offset = 4;
        for (int i = 0; i < vocabSize; i++)
        {
            if (file.Length - offset < 8)
            {
                throw Truncated(path, i, offset, vocabSize, "score and length");
            }

            float score = BinaryPrimitives.ReadSingleLittleEndian(file.AsSpan(offset));
            if (float.IsNaN(score))
            {
                throw new TokenizerFormatException($"{path}: token {i} has a NaN score at offset {offset}")
                { TokenIndex = i, Offset = offset };
            }

            int length = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(offset + 4));
            if (length < 0 || length > maxTokenLength)
            {
                throw new TokenizerFormatException(
                    $"{path}: token {i} has byte length {length} at offset {offset + 4}, outside 0..{maxTokenLength} (max_token_length)")
                { TokenIndex = i, Offset = offset + 4 };
            }

            offset += 8;
            if (file.Length - offset < length)
            {
                throw Truncated(path, i, offset, vocabSize, $"{length} piece bytes");
            }

            scores[i] = score;
            pieces[i] = file.AsSpan(offset, length).ToArray();
            offset += length;
        }

        try
        {
            return new LlamaTokenizer(pieces, scores, options ?? LlamaTokenizerOptions.Llama2c);
        }
        catch (TokenizerFormatException e)
        {
            throw new TokenizerFormatException($"{path}: {e.Message}", e) { TokenIndex = e.TokenIndex };
        }
    }

    public ReadOnlySpan<byte> TokenBytes(int previousTokenId, int tokenId)
    {
        if ((uint)tokenId >= (uint)_outputBytes.Length)
        {
            ThrowTokenOutOfRange(tokenId, _outputBytes.Length);
        }

        // After BOS, a piece's leading space is the dummy prefix, not text (llama2.c's decode).
        var bytes = _outputBytes[tokenId].AsSpan();
        return previousTokenId == _options.BosId && _dropSpaceAfterBos[tokenId] ? bytes[1..] : bytes;
    }

    private static TokenizerFormatException Truncated(string path, int index, int offset, int vocabSize, string what) =>
        new($"{path}: truncated at token {index} of {vocabSize}: needs {what} at offset {offset}, file ends before")
        { TokenIndex = index, Offset = offset };

    private static void CheckSpecialId(string name, int id, int vocab)
    {
        if (id < -1 || id >= vocab)
        {
            throw new TokenizerFormatException($"{name} {id} is outside -1..{vocab - 1}");
        }
    }

    private static void CheckByteFallbackPieces(byte[][] pieces, int baseId)
    {
        if (baseId + 256 > pieces.Length)
        {
            throw new TokenizerFormatException(
                $"byte-fallback tokens {baseId}..{baseId + 255} do not fit a vocabulary of {pieces.Length}");
        }

        Span<byte> expected = stackalloc byte[6];
        for (int b = 0; b < 256; b++)
        {
            Encoding.ASCII.GetBytes($"<0x{b:X2}>", expected);
            if (!expected.SequenceEqual(pieces[baseId + b]))
            {
                throw new TokenizerFormatException(
                    $"token {baseId + b} should be the byte-fallback piece <0x{b:X2}> but is '{Encoding.UTF8.GetString(pieces[baseId + b])}'")
                { TokenIndex = baseId + b };
            }
        }
    }

    private static byte[] ReplaceAll(byte[] source, ReadOnlySpan<byte> from, ReadOnlySpan<byte> to)
    {
        if (from.SequenceEqual(to) || source.AsSpan().IndexOf(from) < 0)
        {
            return source;
        }

        var result = new List<byte>(source.Length);
        var rest = source.AsSpan();
        for (int at; (at = rest.IndexOf(from)) >= 0; rest = rest[(at + from.Length)..])
        {
            result.AddRange(rest[..at]);
            result.AddRange(to);
        }

        result.AddRange(rest);
        return [.. result];
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTokenOutOfRange(int tokenId, int vocab) =>
        throw new ArgumentOutOfRangeException(nameof(tokenId), tokenId, $"token id outside 0..{vocab - 1}");
}
