using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;

namespace RawInfer.Safety.Audit;

/// <summary>
/// On-disk layout. A segment file <c>audit-SEQ.seg</c> is a header followed by records, little-endian:
/// <code>
/// header: "RIAUDIT1" | u64 first sequence | 32-byte previous segment's final hash | u32 CRC-32 of the above  (52 bytes)
/// record: u32 total length | u64 sequence | i64 timestamp (UTC ticks) | u8 type
///         | key id, client address, request id (u16 byte length, 0xFFFF = null, UTF-8)
///         | u16 field count | per field: name (u16 length + UTF-8), value (u32 length + UTF-8)
///         | u32 CRC-32 of everything before it | 32-byte SHA-256(previous hash ‖ everything before it)
/// </code>
/// The hash chains each record to the one before, across segments through the header; the first chain starts from 32
/// zero bytes, or from an anchor in <c>checkpoints.txt</c> after pruning or a restart.
/// </summary>
internal static class AuditFormat
{
    public const int HeaderSize = 52;
    public const int HashSize = 32;
    public const int MinRecordSize = 4 + 8 + 8 + 1 + (3 * 2) + 2 + 4 + HashSize;
    public const int MaxRecordSize = 16 << 20;
    public const string CheckpointsFile = "checkpoints.txt";
    private const ushort NullString = 0xFFFF;
    private static readonly byte[] Magic = "RIAUDIT1"u8.ToArray();

    public static string SegmentName(long firstSequence) =>
        string.Create(CultureInfo.InvariantCulture, $"audit-{firstSequence:D20}.seg");

    /// <summary>Segment files of a directory in chain order.</summary>
    public static string[] Segments(string directory)
    {
        var files = Directory.GetFiles(directory, "audit-*.seg");
        Array.Sort(files, StringComparer.Ordinal);
        return files;
    }

    public static byte[] EncodeHeader(long firstSequence, ReadOnlySpan<byte> previousHash)
    {
        var header = new byte[HeaderSize];
        Magic.CopyTo(header, 0);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), firstSequence);
        previousHash.CopyTo(header.AsSpan(16));
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(48), Crc32.HashToUInt32(header.AsSpan(0, 48)));
        return header;
    }

    /// <summary>Parses a header; false when the magic or CRC is wrong.</summary>
    public static bool TryDecodeHeader(ReadOnlySpan<byte> header, out long firstSequence, out byte[] previousHash)
    {
        firstSequence = 0;
        previousHash = [];
        if (header.Length < HeaderSize || !header[..8].SequenceEqual(Magic)
            || BinaryPrimitives.ReadUInt32LittleEndian(header[48..]) != Crc32.HashToUInt32(header[..48]))
        {
            return false;
        }

        firstSequence = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
        previousHash = header.Slice(16, HashSize).ToArray();
        return true;
    }

    /// <summary>Serializes a record, computing its CRC and its chain hash from <paramref name="previousHash"/>.</summary>
    public static byte[] EncodeRecord(long sequence, DateTimeOffset timestamp, AuditEvent e, ReadOnlySpan<byte> previousHash)
    {
        var body = new ArrayBufferWriterLite();
        body.Skip(4);
        body.WriteInt64(sequence);
        body.WriteInt64(timestamp.UtcTicks);
        body.WriteByte((byte)e.Type);
        body.WriteShortString(e.KeyId);
        body.WriteShortString(e.ClientAddress);
        body.WriteShortString(e.RequestId);
        var fields = e.FieldList;
        if (fields.Count > ushort.MaxValue)
        {
            throw new ArgumentException($"an audit record holds at most {ushort.MaxValue} fields; got {fields.Count}", nameof(e));
        }

        body.WriteUInt16((ushort)fields.Count);
        foreach (var (name, value) in fields)
        {
            body.WriteShortString(name);
            var bytes = Encoding.UTF8.GetBytes(value);
            body.WriteInt32(bytes.Length);
            body.WriteBytes(bytes);
        }

        var total = body.Length + 4 + HashSize;
        if (total > MaxRecordSize)
        {
            throw new ArgumentException($"audit record of {total} bytes exceeds the {MaxRecordSize}-byte limit", nameof(e));
        }

        var record = new byte[total];
        body.CopyTo(record);
        BinaryPrimitives.WriteInt32LittleEndian(record, total);
        var crcAt = total - 4 - HashSize;
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(crcAt), Crc32.HashToUInt32(record.AsSpan(0, crcAt)));
        ChainHash(previousHash, record.AsSpan(0, total - HashSize), record.AsSpan(total - HashSize));
        return record;
    }

    public static void ChainHash(ReadOnlySpan<byte> previousHash, ReadOnlySpan<byte> recordWithoutHash, Span<byte> destination)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(previousHash);
        sha.AppendData(recordWithoutHash);
        sha.GetHashAndReset(destination);
    }

    /// <summary>True when the stored CRC matches (the length must already be known to fit).</summary>
    public static bool CrcMatches(ReadOnlySpan<byte> record)
    {
        var crcAt = record.Length - 4 - HashSize;
        return BinaryPrimitives.ReadUInt32LittleEndian(record[crcAt..]) == Crc32.HashToUInt32(record[..crcAt]);
    }

    /// <summary>Decodes a record whose CRC matched. Throws <see cref="FormatException"/> on an inconsistent layout.</summary>
    public static (long Sequence, DateTimeOffset Timestamp, AuditEvent Event) DecodeRecord(ReadOnlySpan<byte> record)
    {
        var reader = new SpanCursor(record[4..^(4 + HashSize)]);
        var sequence = reader.ReadInt64();
        var ticks = reader.ReadInt64();
        var type = (AuditEventType)reader.ReadByte();
        var keyId = reader.ReadShortString();
        var address = reader.ReadShortString();
        var requestId = reader.ReadShortString();
        var count = reader.ReadUInt16();
        var fields = new KeyValuePair<string, string>[count];
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadShortString() ?? string.Empty;
            var length = reader.ReadInt32();
            fields[i] = new(name, Encoding.UTF8.GetString(reader.Take(length)));
        }

        if (!reader.IsEmpty || ticks < DateTimeOffset.MinValue.UtcTicks || ticks > DateTimeOffset.MaxValue.UtcTicks)
        {
            throw new FormatException("audit record fields do not fill its length");
        }

        return (sequence, new DateTimeOffset(ticks, TimeSpan.Zero), new AuditEvent(type, keyId, address, requestId, fields));
    }

    public static long ReadSequence(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadInt64LittleEndian(record[4..]);

    private ref struct SpanCursor(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _data = data;

        public readonly bool IsEmpty => _data.IsEmpty;

        public ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || n > _data.Length)
            {
                throw new FormatException($"audit record field of {n} bytes runs past the record end");
            }

            var head = _data[..n];
            _data = _data[n..];
            return head;
        }

        public long ReadInt64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

        public int ReadInt32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));

        public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));

        public byte ReadByte() => Take(1)[0];

        public string? ReadShortString()
        {
            var length = ReadUInt16();
            return length == NullString ? null : Encoding.UTF8.GetString(Take(length));
        }
    }

    private sealed class ArrayBufferWriterLite
    {
        private byte[] _buffer = new byte[256];

        public int Length { get; private set; }

        public void Skip(int n) => Span(n);

        public void WriteInt64(long v) => BinaryPrimitives.WriteInt64LittleEndian(Span(8), v);

        public void WriteInt32(int v) => BinaryPrimitives.WriteInt32LittleEndian(Span(4), v);

        public void WriteUInt16(ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Span(2), v);

        public void WriteByte(byte v) => Span(1)[0] = v;

        public void WriteBytes(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Span(bytes.Length));

        public void WriteShortString(string? s)
        {
            if (s is null)
            {
                WriteUInt16(NullString);
                return;
            }

            var bytes = Encoding.UTF8.GetBytes(s);
            if (bytes.Length >= NullString)
            {
                throw new ArgumentException($"audit string of {bytes.Length} UTF-8 bytes exceeds {NullString - 1}", nameof(s));
            }

            WriteUInt16((ushort)bytes.Length);
            WriteBytes(bytes);
        }

        public void CopyTo(Span<byte> destination) => _buffer.AsSpan(0, Length).CopyTo(destination);

        private Span<byte> Span(int n)
        {
            if (Length + n > _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + n));
            }

            var span = _buffer.AsSpan(Length, n);
            Length += n;
            return span;
        }
    }
}
