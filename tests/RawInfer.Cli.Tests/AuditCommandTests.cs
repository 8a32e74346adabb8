using System.Globalization;
using RawInfer.Safety.Audit;

namespace RawInfer.Cli.Tests;

public sealed class AuditCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    private async Task<string> WriteLogAsync(ContentRetention retention = ContentRetention.HashOnly)
    {
        var dir = _cli.TempFile("audit");
        await using var log = AuditLog.Open(dir, new AuditLogOptions { Retention = retention, SegmentBytes = 700 });
        for (var i = 0; i < 6; i++)
        {
            var key = i % 2 == 0 ? "alice" : "bob";
            var fields = log.Content.Describe(key, "prompt", "prompt number " + i.ToString(CultureInfo.InvariantCulture));
            await log.AppendAsync(new AuditEvent(AuditEventType.RequestAdmitted, key, "10.0.0.1:999", "req-" + i.ToString(CultureInfo.InvariantCulture), fields), TestContext.Current.CancellationToken);
        }

        return dir;
    }

    [Fact]
    public async Task Verify_reports_ok_with_a_summary()
    {
        var dir = await WriteLogAsync();
        var result = _cli.Run("audit", "verify", dir);
        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("ok: 7 records, sequences 1..7, chain hash ", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_names_the_first_bad_sequence_and_offset()
    {
        var dir = await WriteLogAsync();
        var victim = AuditReader.Query(dir, new AuditQuery(RequestId: "req-2")).Single();
        var path = Path.Combine(dir, victim.Segment);
        var bytes = await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken);
        bytes[victim.Offset + 40] ^= 0x01;
        await File.WriteAllBytesAsync(path, bytes, TestContext.Current.CancellationToken);

        var result = _cli.Run("audit", "verify", dir);
        result.AssertCleanError(string.Create(CultureInfo.InvariantCulture,
            $"first bad sequence {victim.Sequence} at offset {victim.Offset} of {victim.Segment}"));
    }

    [Fact]
    public async Task Query_filters_by_key_request_and_time()
    {
        var dir = await WriteLogAsync();
        var byKey = _cli.Run("audit", "query", dir, "--key-id", "bob");
        Assert.Equal(0, byKey.ExitCode);
        var lines = byKey.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.All(lines, l => Assert.Contains(" key=bob ", l, StringComparison.Ordinal));
        Assert.Contains("3 records", byKey.Error, StringComparison.Ordinal);

        var one = _cli.Run("audit", "query", dir, "--request-id", "req-4");
        var line = Assert.Single(one.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("RequestAdmitted key=alice addr=10.0.0.1:999 req=req-4 prompt_sha256=", line, StringComparison.Ordinal);
        Assert.Contains("prompt_chars=15", line, StringComparison.Ordinal);

        var future = _cli.Run("audit", "query", dir, "--since", DateTimeOffset.UtcNow.AddDays(1).ToString("O", CultureInfo.InvariantCulture));
        Assert.Equal(0, future.ExitCode);
        Assert.Equal("", future.Output);
        Assert.Equal(7, _cli.Run("audit", "query", dir, "--until", DateTimeOffset.UtcNow.AddDays(1).ToString("O", CultureInfo.InvariantCulture))
            .Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        _cli.Run("audit", "query", dir, "--since", "yesterday").AssertCleanError("--since: 'yesterday' is not a time");
    }

    [Fact]
    public async Task Forget_shreds_the_key_s_content_keeps_the_chain_valid_and_is_audited()
    {
        var dir = await WriteLogAsync(ContentRetention.Encrypted);
        var before = _cli.Run("audit", "query", dir, "--request-id", "req-0", "--decrypt");
        Assert.Contains("prompt=\"prompt number 0\"", before.Output, StringComparison.Ordinal);

        var forget = _cli.Run("audit", "forget", dir, "alice");
        Assert.Equal(0, forget.ExitCode);
        Assert.Contains("forgot the data key of alice", forget.Output, StringComparison.Ordinal);

        Assert.Contains("prompt=<encrypted>", _cli.Run("audit", "query", dir, "--request-id", "req-0", "--decrypt").Output, StringComparison.Ordinal);
        Assert.Contains("prompt=\"prompt number 1\"", _cli.Run("audit", "query", dir, "--request-id", "req-1", "--decrypt").Output, StringComparison.Ordinal);
        Assert.Equal(0, _cli.Run("audit", "verify", dir).ExitCode);
        Assert.Contains("KeyForgotten key=- addr=- req=- forgotten_key_id=alice data_key_existed=true", _cli.Run("audit", "query", dir).Output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_directory_is_a_clean_error() =>
        _cli.Run("audit", "verify", _cli.TempFile("nope")).AssertCleanError("does not exist");
}
