using System.Globalization;

namespace RawInfer.Safety.Audit;

public sealed partial class AuditLog
{
    /// <summary>
    /// Deletes whole segments whose every record is older than <paramref name="olderThan"/> (never the one being
    /// written), oldest first. An anchor naming where the chain resumes is made durable before any file goes, so
    /// verification accepts the shortened log; the pruning is itself audited. Returns the number of segments deleted.
    /// </summary>
    public async Task<int> PruneAsync(DateTimeOffset olderThan, CancellationToken cancellationToken = default)
    {
        var segments = AuditFormat.Segments(_directory);
        var newest = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        AuditChainWalker.Walk(_directory, r =>
        {
            if (!newest.TryGetValue(r.Segment, out var t) || r.Timestamp > t)
            {
                newest[r.Segment] = r.Timestamp;
            }
        });

        var prune = 0;
        while (prune < segments.Length - 1
            && newest.TryGetValue(Path.GetFileName(segments[prune]), out var last) && last < olderThan)
        {
            prune++;
        }

        if (prune == 0)
        {
            return 0;
        }

        var boundary = await File.ReadAllBytesAsync(segments[prune], cancellationToken).ConfigureAwait(false);
        if (!AuditFormat.TryDecodeHeader(boundary, out var firstKept, out var previousHash))
        {
            throw new IOException($"audit segment {segments[prune]} has a corrupt header; not pruning");
        }

        AuditCheckpoints.Append(_directory, "anchor", firstKept - 1, previousHash);
        for (var i = 0; i < prune; i++)
        {
            File.Delete(segments[i]);
        }

        await AppendAsync(new AuditEvent(AuditEventType.SegmentsPruned, Fields:
        [
            new("segments", prune.ToString(CultureInfo.InvariantCulture)),
            new("through_sequence", (firstKept - 1).ToString(CultureInfo.InvariantCulture)),
            new("older_than", olderThan.ToString("O", CultureInfo.InvariantCulture)),
        ]), cancellationToken).ConfigureAwait(false);
        return prune;
    }

    /// <summary>
    /// Crypto-shredding: destroys <paramref name="keyId"/>'s data key, so its stored prompts and outputs can no longer
    /// be read while the chain (computed over the ciphertext) still verifies; the erasure is audited and durable on
    /// return. Returns whether a key existed.
    /// </summary>
    public async Task<bool> ForgetAsync(string keyId, string? actorKeyId = null, CancellationToken cancellationToken = default)
    {
        var existed = Content.Forget(keyId);
        await AppendAsync(new AuditEvent(AuditEventType.KeyForgotten, actorKeyId, Fields:
        [
            new("forgotten_key_id", keyId),
            new("data_key_existed", existed ? "true" : "false"),
        ]), cancellationToken).ConfigureAwait(false);
        return existed;
    }
}
