using System.Globalization;
using System.Security.Cryptography;

namespace RawInfer.Safety.Audit;

/// <summary>What a walk over a log directory found.</summary>
/// <param name="Count">Records that verified.</param>
/// <param name="FirstSequence">Sequence of the first record (or of the next one when the log is empty).</param>
/// <param name="NextSequence">Sequence the next appended record gets.</param>
/// <param name="LastHash">Chain hash after the last verified record.</param>
/// <param name="Damage">The first problem, or null when everything verified.</param>
/// <param name="IsTornTail">The problem is an incomplete write at the very end of the last segment.</param>
/// <param name="LastSegment">Path of the last segment, or null when there is none.</param>
/// <param name="LastSegmentValidLength">Bytes of the last segment that verified.</param>
internal sealed record AuditWalkResult(
    long Count, long FirstSequence, long NextSequence, byte[] LastHash, AuditDamage? Damage, bool IsTornTail,
    string? LastSegment, long LastSegmentValidLength);

/// <summary>
/// Walks a log directory in chain order, recomputing every header, CRC, sequence number and chain hash, and the
/// checkpoints; stops at the first problem. Shared by verify, query and recovery.
/// </summary>
internal static class AuditChainWalker
{
    public static AuditWalkResult Walk(string directory, Action<AuditRecord>? onRecord = null)
    {
        var segments = AuditFormat.Segments(directory);
        var checkpoints = AuditCheckpoints.Read(directory);
        var zero = new byte[AuditFormat.HashSize];
        if (segments.Length == 0)
        {
            var anchor = checkpoints.LatestAnchor;
            return anchor is { } a
                ? new AuditWalkResult(0, a.Sequence + 1, a.Sequence + 1, a.Hash, null, false, null, 0)
                : new AuditWalkResult(0, 1, 1, zero, null, false, null, 0);
        }

        var running = zero;
        long expected = 1;
        long count = 0;
        long firstSequence = 1;
        var hash = new byte[AuditFormat.HashSize];
        for (var s = 0; s < segments.Length; s++)
        {
            var path = segments[s];
            var name = Path.GetFileName(path);
            var isLast = s == segments.Length - 1;
            var bytes = File.ReadAllBytes(path);

            AuditWalkResult Fail(long offset, string reason, bool torn) =>
                new(count, firstSequence, expected, running, new AuditDamage(expected, name, offset, reason), torn, path, offset);

            if (!AuditFormat.TryDecodeHeader(bytes, out var headerSequence, out var previousHash))
            {
                // A crash while a segment was being created leaves a short or zero-filled header and no records.
                var tornHeader = isLast && bytes.Length <= AuditFormat.HeaderSize && !bytes.AsSpan().ContainsAnyExcept((byte)0)
                    || isLast && bytes.Length < AuditFormat.HeaderSize;
                return Fail(0, "segment header is missing or corrupt", tornHeader);
            }

            if (s == 0)
            {
                // The chain starts at sequence 1 from zeros, or where an anchor (pruning, restart) says it resumes.
                var anchored = headerSequence == 1 && previousHash.AsSpan().SequenceEqual(zero)
                    || checkpoints.HasAnchor(headerSequence - 1, previousHash);
                expected = headerSequence;
                firstSequence = headerSequence;
                running = previousHash;
                if (!anchored)
                {
                    return Fail(0, "the chain's first segment starts neither at sequence 1 nor at an anchor in " + AuditFormat.CheckpointsFile, false);
                }
            }
            else if (headerSequence != expected)
            {
                return Fail(0, string.Create(CultureInfo.InvariantCulture, $"segment starts at sequence {headerSequence}"), false);
            }
            else if (!previousHash.AsSpan().SequenceEqual(running))
            {
                return Fail(0, "segment header's previous hash does not match the chain", false);
            }

            long offset = AuditFormat.HeaderSize;
            while (offset < bytes.Length)
            {
                var rest = bytes.AsSpan((int)offset);
                if (rest.Length < 4)
                {
                    return Fail(offset, "truncated record length", isLast);
                }

                var total = BitConverter.ToInt32(rest);
                if (total < AuditFormat.MinRecordSize || total > AuditFormat.MaxRecordSize || total > rest.Length)
                {
                    // A crash may leave a partial record, or zeros the file system extended it with.
                    var torn = isLast && (total > rest.Length || !rest.ContainsAnyExcept((byte)0));
                    return Fail(offset, string.Create(CultureInfo.InvariantCulture, $"record length {total} is invalid ({rest.Length} bytes left)"), torn);
                }

                var record = rest[..total];
                if (!AuditFormat.CrcMatches(record))
                {
                    return Fail(offset, "CRC mismatch", isLast && offset + total == bytes.Length);
                }

                var sequence = AuditFormat.ReadSequence(record);
                if (sequence != expected)
                {
                    return Fail(offset, string.Create(CultureInfo.InvariantCulture, $"found sequence {sequence}"), false);
                }

                AuditFormat.ChainHash(running, record[..^AuditFormat.HashSize], hash);
                if (!CryptographicOperations.FixedTimeEquals(hash, record[^AuditFormat.HashSize..]))
                {
                    return Fail(offset, "chain hash mismatch", false);
                }

                if (checkpoints.TryGetCheckpoint(sequence, out var expectedHash) && !expectedHash.AsSpan().SequenceEqual(hash))
                {
                    return Fail(offset, "hash differs from the checkpoint for this sequence", false);
                }

                if (onRecord is not null)
                {
                    try
                    {
                        var (_, timestamp, e) = AuditFormat.DecodeRecord(record);
                        onRecord(new AuditRecord(sequence, timestamp, e, name, offset));
                    }
                    catch (FormatException ex)
                    {
                        return Fail(offset, ex.Message, false);
                    }
                }

                running = (byte[])hash.Clone();
                expected++;
                count++;
                offset += total;
            }

            if (isLast)
            {
                // Records a checkpoint vouches for were durable: if they are gone, that is loss, not a torn write.
                if (checkpoints.MaxCheckpointSequence >= expected)
                {
                    return Fail(offset, string.Create(CultureInfo.InvariantCulture,
                        $"the log ends before sequence {checkpoints.MaxCheckpointSequence}, which a checkpoint records"), false);
                }

                return new AuditWalkResult(count, firstSequence, expected, running, null, false, path, offset);
            }
        }

        throw new InvalidOperationException("unreachable: the loop returns at the last segment");
    }
}
