using System.Globalization;
using RawInfer.Safety.Audit;
using Xunit;

namespace RawInfer.Safety.Tests.Audit;

/// <summary>Builds small test logs.</summary>
internal static class AuditTestLog
{
    public static AuditEvent Event(int i) => new(
        AuditEventType.RequestFinished,
        KeyId: i % 3 == 0 ? "alice" : "bob",
        ClientAddress: "10.0.0." + (i % 7).ToString(CultureInfo.InvariantCulture),
        RequestId: "req-" + i.ToString(CultureInfo.InvariantCulture),
        Fields: [new("finish_reason", "Stop"), new("completion_tokens", i.ToString(CultureInfo.InvariantCulture))]);

    /// <summary>Writes <paramref name="count"/> events one at a time (one batch each) and closes the log.</summary>
    public static async Task WriteAsync(string directory, int count, AuditLogOptions options)
    {
        await using var log = AuditLog.Open(directory, options);
        for (var i = 0; i < count; i++)
        {
            await log.AppendAsync(Event(i), TestContext.Current.CancellationToken);
        }
    }

    /// <summary>(sequence, segment path, offset, length) of every record, from a clean log.</summary>
    public static List<(long Sequence, string Path, long Offset, int Length)> Layout(string directory)
    {
        var result = new List<(long, string, long, int)>();
        foreach (var path in Directory.GetFiles(directory, "audit-*.seg").Order(StringComparer.Ordinal))
        {
            var bytes = File.ReadAllBytes(path);
            long offset = 52;
            while (offset < bytes.Length)
            {
                var length = BitConverter.ToInt32(bytes, (int)offset);
                var sequence = BitConverter.ToInt64(bytes, (int)offset + 4);
                result.Add((sequence, path, offset, length));
                offset += length;
            }
        }

        return result;
    }
}
