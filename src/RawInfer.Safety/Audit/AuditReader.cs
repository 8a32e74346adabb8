namespace RawInfer.Safety.Audit;

/// <summary>A filter over audit records; null fields match everything. Times are inclusive.</summary>
public sealed record AuditQuery(
    string? KeyId = null,
    string? RequestId = null,
    DateTimeOffset? Since = null,
    DateTimeOffset? Until = null)
{
    public bool Matches(AuditRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return (KeyId is null || string.Equals(record.KeyId, KeyId, StringComparison.Ordinal))
            && (RequestId is null || string.Equals(record.RequestId, RequestId, StringComparison.Ordinal))
            && (Since is null || record.Timestamp >= Since)
            && (Until is null || record.Timestamp <= Until);
    }
}

/// <summary>The outcome of verifying a log directory.</summary>
/// <param name="Records">Records that verified.</param>
/// <param name="FirstSequence">First sequence in the directory.</param>
/// <param name="LastSequence">Last verified sequence (FirstSequence − 1 when none).</param>
/// <param name="LastHash">Chain hash after the last verified record (hex).</param>
/// <param name="Damage">The first bad sequence number and byte offset, or null.</param>
public sealed record AuditVerifyResult(long Records, long FirstSequence, long LastSequence, string LastHash, AuditDamage? Damage)
{
    public bool IsValid => Damage is null;
}

/// <summary>Reads and verifies log directories (no writer needed; safe while a writer appends).</summary>
public static class AuditReader
{
    /// <summary>Recomputes every CRC, sequence number, chain hash and checkpoint; names the first bad sequence and offset.</summary>
    public static AuditVerifyResult Verify(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"audit directory {directory} does not exist");
        }

        var walk = AuditChainWalker.Walk(directory);
        return new AuditVerifyResult(walk.Count, walk.FirstSequence, walk.NextSequence - 1, Convert.ToHexStringLower(walk.LastHash), walk.Damage);
    }

    /// <summary>
    /// Records matching <paramref name="query"/>, in sequence order, from the verified part of the log (reading stops
    /// at the first damage, or at a record a writer has not finished).
    /// </summary>
    public static IReadOnlyList<AuditRecord> Query(string directory, AuditQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"audit directory {directory} does not exist");
        }

        var results = new List<AuditRecord>();
        AuditChainWalker.Walk(directory, r =>
        {
            if (query.Matches(r))
            {
                results.Add(r);
            }
        });
        return results;
    }
}
