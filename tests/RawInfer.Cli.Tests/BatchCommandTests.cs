using RawInfer.Tests;

namespace RawInfer.Cli.Tests;

public sealed class BatchCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    [Fact]
    public void Batch_writes_one_result_per_request_in_order_with_a_summary()
    {
        var input = _cli.TempFile("in.jsonl");
        var output = _cli.TempFile("out.jsonl");
        File.WriteAllLines(input,
        [
            """{"id":"a","prompt":"Once upon a time","max_tokens":30}""",
            """{"id":"b","prompt":"Tom had a dog","max_tokens":10,"temperature":0.8,"seed":7}""",
            """{"id":"c","prompt":"Once upon a time","max_tokens":60,"stop":["park"]}""",
        ]);

        var result = _cli.Run("batch", input, output, "--model", TestPaths.Model("stories260K.bin"), "--threads", "1");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("requests/s", result.Output, StringComparison.Ordinal);
        Assert.Contains("TTFT p50", result.Output, StringComparison.Ordinal);
        var lines = File.ReadAllLines(output);
        Assert.Equal(3, lines.Length);
        Assert.Contains("\"id\":\"a\"", lines[0], StringComparison.Ordinal);
        Assert.Contains("there was a little girl named Lily", lines[0], StringComparison.Ordinal);
        Assert.Contains("\"finish_reason\":\"StopString\"", lines[2], StringComparison.Ordinal);
        Assert.DoesNotContain("park", lines[2], StringComparison.Ordinal);
    }

    [Fact]
    public void Batch_runs_on_a_half_kv_cache()
    {
        var input = _cli.TempFile("in16.jsonl");
        var output = _cli.TempFile("out16.jsonl");
        File.WriteAllLines(input, ["""{"id":"a","prompt":"Once upon a time","max_tokens":30}"""]);
        var result = _cli.Run("batch", input, output, "--model", TestPaths.Model("stories260K.bin"), "--threads", "1", "--kv-dtype", "f16");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("there was a little girl named Lily", File.ReadAllText(output), StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_line_is_reported_with_its_line_number()
    {
        var input = _cli.TempFile("bad.jsonl");
        File.WriteAllLines(input, ["""{"prompt":"ok"}""", """{"max_tokens":3}"""]);
        var result = _cli.Run("batch", input, _cli.TempFile("out.jsonl"), "--model", TestPaths.Model("stories260K.bin"));
        Assert.Equal(CliApp.ErrorExitCode, result.ExitCode);
        Assert.Contains("bad.jsonl:2", result.Error, StringComparison.Ordinal);
    }

    public void Dispose() => _cli.Dispose();
}
