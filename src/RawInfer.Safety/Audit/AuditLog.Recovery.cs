using System.Globalization;

namespace RawInfer.Safety.Audit;

public sealed partial class AuditLog
{
    /// <summary>
    /// Brings the directory to a state the writer can continue: a torn tail is cut off (each cut becomes a Recovery
    /// event); other damage throws, or with <see cref="AuditLogOptions.StartNewChainOnDamage"/> the segments are set
    /// aside (renamed <c>*.damaged-TICKS</c>) and a new chain is anchored at the next sequence number.
    /// </summary>
    private static (AuditWalkResult State, List<AuditEvent> Events) Recover(string directory, AuditLogOptions options)
    {
        var events = new List<AuditEvent>();
        for (var attempt = 0; attempt < 8; attempt++)
        {
            var walk = AuditChainWalker.Walk(directory);
            if (walk.Damage is not { } damage)
            {
                return (walk, events);
            }

            var inv = CultureInfo.InvariantCulture;
            if (walk.IsTornTail && walk.LastSegment is { } segment)
            {
                var length = new FileInfo(segment).Length;
                if (walk.LastSegmentValidLength < AuditFormat.HeaderSize)
                {
                    File.Delete(segment);
                }
                else
                {
                    using var stream = new FileStream(segment, FileMode.Open, FileAccess.Write, FileShare.None);
                    stream.SetLength(walk.LastSegmentValidLength);
                    stream.Flush(flushToDisk: true);
                }

                events.Add(new AuditEvent(AuditEventType.Recovery, Fields:
                [
                    new("action", "truncated torn tail"),
                    new("segment", damage.Segment),
                    new("offset", damage.Offset.ToString(inv)),
                    new("bytes_removed", (length - walk.LastSegmentValidLength).ToString(inv)),
                    new("sequence", damage.Sequence.ToString(inv)),
                    new("reason", damage.Reason),
                ]));
                continue;
            }

            if (!options.StartNewChainOnDamage)
            {
                throw new AuditLogCorruptException(damage);
            }

            var suffix = ".damaged-" + options.TimeProvider.GetUtcNow().UtcTicks.ToString(inv);
            foreach (var file in AuditFormat.Segments(directory))
            {
                File.Move(file, file + suffix);
            }

            var checkpoints = Path.Combine(directory, AuditFormat.CheckpointsFile);
            if (File.Exists(checkpoints))
            {
                File.Move(checkpoints, checkpoints + suffix);
            }

            AuditCheckpoints.Append(directory, "anchor", walk.NextSequence - 1, new byte[AuditFormat.HashSize]);
            events.Add(new AuditEvent(AuditEventType.ChainRestarted, Fields:
            [
                new("damaged_sequence", damage.Sequence.ToString(inv)),
                new("segment", damage.Segment),
                new("offset", damage.Offset.ToString(inv)),
                new("reason", damage.Reason),
                new("set_aside_suffix", suffix),
            ]));
        }

        throw new IOException($"audit log recovery in {directory} did not converge");
    }
}
