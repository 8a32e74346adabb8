using System.Globalization;

namespace RawInfer.Safety.Audit;

/// <summary>
/// <c>checkpoints.txt</c>: lines <c>checkpoint SEQ HASH</c> (the chain hash after record SEQ, written every N records
/// after they are durable) and <c>anchor SEQ HASH</c> (the chain resumes after SEQ with HASH: written before old
/// segments are pruned or when a new chain is started). Verification checks every checkpoint it reaches and accepts a
/// first segment that starts at an anchor.
/// </summary>
internal sealed class AuditCheckpoints
{
    private readonly Dictionary<long, byte[]> _checkpoints = [];
    private readonly List<(long Sequence, byte[] Hash)> _anchors = [];

    public long MaxCheckpointSequence { get; private set; }

    public (long Sequence, byte[] Hash)? LatestAnchor => _anchors.Count == 0 ? null : _anchors[^1];

    public static AuditCheckpoints Read(string directory)
    {
        var result = new AuditCheckpoints();
        var path = Path.Combine(directory, AuditFormat.CheckpointsFile);
        if (!File.Exists(path))
        {
            return result;
        }

        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 3 || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
            {
                continue; // a torn last line; the chain itself is the authority
            }

            byte[] hash;
            try
            {
                hash = Convert.FromHexString(parts[2]);
            }
            catch (FormatException)
            {
                continue;
            }

            if (hash.Length != AuditFormat.HashSize)
            {
                continue;
            }

            if (parts[0] == "checkpoint")
            {
                result._checkpoints[sequence] = hash;
                result.MaxCheckpointSequence = Math.Max(result.MaxCheckpointSequence, sequence);
            }
            else if (parts[0] == "anchor")
            {
                result._anchors.Add((sequence, hash));
            }
        }

        return result;
    }

    public bool TryGetCheckpoint(long sequence, out byte[] hash) => _checkpoints.TryGetValue(sequence, out hash!);

    public bool HasAnchor(long sequence, ReadOnlySpan<byte> hash)
    {
        foreach (var (s, h) in _anchors)
        {
            if (s == sequence && hash.SequenceEqual(h))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Appends one line and forces it to disk.</summary>
    public static void Append(string directory, string kind, long sequence, ReadOnlySpan<byte> hash)
    {
        var path = Path.Combine(directory, AuditFormat.CheckpointsFile);
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        var line = string.Create(CultureInfo.InvariantCulture, $"{kind} {sequence} {Convert.ToHexString(hash)}\n");
        stream.Write(System.Text.Encoding.ASCII.GetBytes(line));
        stream.Flush(flushToDisk: true);
    }
}
