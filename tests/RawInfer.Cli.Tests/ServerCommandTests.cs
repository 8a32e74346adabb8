using System.Globalization;
using System.Diagnostics;
using System.Net;
using RawInfer.Cli.Commands;
using RawInfer.Client;
using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.KvCache;
using RawInfer.Models.Llama2c;
using RawInfer.Protocol;
using RawInfer.Safety.Access;
using RawInfer.Server;
using RawInfer.Tests;
using RawInfer.Tokenizers;

namespace RawInfer.Cli.Tests;

/// <summary><c>rawinfer client</c>, <c>bench --server</c> against an in-test server, and <c>serve</c> as a real process.</summary>
public class ServerCommandTests
{
    private const string Key = "cli-test-key";

    [Fact]
    public async Task Client_streams_the_same_text_the_engine_generates()
    {
        await using var server = await TestServer.StartAsync();
        var expected = await server.Engine.GenerateAsync(new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 12 }, TestContext.Current.CancellationToken);
        using var cli = new CliHarness();
        var result = await Task.Run(() => cli.Run("client", "Once upon a time", "--server", server.Address, "--api-key", Key, "-n", "12", "-t", "0"));
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(expected.Text + Environment.NewLine, result.Output);
        Assert.Contains("12 generated tokens", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_with_a_wrong_key_fails_cleanly()
    {
        await using var server = await TestServer.StartAsync();
        using var cli = new CliHarness();
        var result = await Task.Run(() => cli.Run("client", "Hi", "--server", server.Address, "--api-key", "nope"));
        result.AssertCleanError("Unauthorized");
    }

    [Fact]
    public async Task Bench_against_a_server_reports_throughput_and_latency_percentiles()
    {
        await using var server = await TestServer.StartAsync();
        using var cli = new CliHarness();
        cli.Environment["RAWINFER_API_KEY"] = Key;
        var result = await Task.Run(() => cli.Run("bench", "--server", server.Address, "--requests", "24", "--rate", "0",
            "--prompt-lengths", "2:8", "--output-lengths", "4:8", "--connections", "3", "--concurrency", "8"));
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("24 requests (0 failed)", result.Output, StringComparison.Ordinal);
        Assert.Contains("| TTFT |", result.Output, StringComparison.Ordinal);
        Assert.Contains("| TPOT |", result.Output, StringComparison.Ordinal);
        Assert.True(server.Engine.GetStats().RequestsFinished >= 24);
    }

    [Fact]
    public async Task Bench_against_a_server_sends_geometric_output_lengths()
    {
        await using var server = await TestServer.StartAsync();
        using var cli = new CliHarness();
        cli.Environment["RAWINFER_API_KEY"] = Key;
        var before = server.Engine.GetStats().GeneratedTokens;
        var result = await Task.Run(() => cli.Run("bench", "--server", server.Address, "--requests", "40", "--rate", "0",
            "--prompt-lengths", "2:8", "--output-lengths", "geometric:3:12", "--concurrency", "8"));
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("40 requests (0 failed)", result.Output, StringComparison.Ordinal);

        // the load generator's draws, in its order (seed 42; per request a prompt length, its ids, an output length):
        // EOS is ignored, so the server generates exactly the sum of the output lengths
        var (prompts, outputs) = (LengthDistribution.Parse("2:8", "p"), LengthDistribution.Parse("geometric:3:12", "o"));
        var random = new Random(42);
        var expected = 0L;
        for (var i = 0; i < 40; i++)
        {
            for (var k = prompts.Sample(random); k > 0; k--)
            {
                random.Next(3, 256);
            }

            expected += outputs.Sample(random);
        }

        Assert.Equal(expected, server.Engine.GetStats().GeneratedTokens - before);
    }

    [Fact]
    public void Bench_against_a_server_refuses_malformed_lengths_before_connecting()
    {
        using var cli = new CliHarness();
        cli.Environment["RAWINFER_API_KEY"] = Key;
        cli.Run("bench", "--server", "127.0.0.1:1", "--rate", "0", "--output-lengths", "geometric:9:4")
            .AssertCleanError("--output-lengths geometric:MEAN:MAX needs 1 <= MEAN <= MAX, not 'geometric:9:4'");
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("101")]
    public void Serve_refuses_warm_up_rounds_out_of_range_before_listening(string rounds)
    {
        using var cli = new CliHarness();
        var result = cli.Run("serve", "--model", TestPaths.Model("stories260K.bin"), "--tokenizer", TestPaths.Model("tok512.bin"),
            "--listen", "127.0.0.1:0", "--api-key", Key, "--warmup-rounds", rounds, "--audit-dir", cli.TempFile("audit"));
        result.AssertCleanError($"--warmup-rounds must be in 0..100, not {rounds}");
        Assert.DoesNotContain("listening on", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Serve_refuses_a_KV_budget_larger_than_the_memory_with_a_clear_error_before_listening()
    {
        using var cli = new CliHarness();
        var mib = (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes >> 20) + 1024; // more than the machine holds
        var result = cli.Run("serve", "--model", TestPaths.Model("stories260K.bin"), "--tokenizer", TestPaths.Model("tok512.bin"),
            "--listen", "127.0.0.1:0", "--api-key", Key, "--kv-mib", mib.ToString(CultureInfo.InvariantCulture), "--device", "cpu",
            "--audit-dir", cli.TempFile("audit"));
        result.AssertCleanError("lower the KV-cache budget");
        Assert.DoesNotContain("listening on", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Serve_refuses_a_KV_budget_past_the_CPU_pool_limit_with_the_most_it_holds()
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var c = model.Config;
        var most = PagedKvStorage.MaxBlocks(16, c.KvDim);
        var mib = (PagedKvStorage.BytesFor(c.NumLayers, most, 16, c.KvDim, KvCacheType.F32) >> 20) + 64; // past the limit, a whole MiB count
        using var cli = new CliHarness();
        var result = cli.Run("serve", "--model", TestPaths.Model("stories260K.bin"), "--tokenizer", TestPaths.Model("tok512.bin"),
            "--listen", "127.0.0.1:0", "--api-key", Key, "--kv-mib", mib.ToString(CultureInfo.InvariantCulture), "--device", "cpu",
            "--audit-dir", cli.TempFile("audit"));
        result.AssertCleanError($"is more than the CPU backend holds for this model: at most {most} blocks");
        Assert.DoesNotContain("listening on", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_answers_clients_and_exits_0_after_sigterm()
    {
        var dll = typeof(CliApp).Assembly.Location;
        var audit = Directory.CreateTempSubdirectory("rawinfer-serve-audit-");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { "exec", dll, "serve", "--model", TestPaths.Model("stories260K.bin"), "--tokenizer", TestPaths.Model("tok512.bin"),
                "--listen", "127.0.0.1:0", "--api-key", Key, "--threads", "1", "--kv-mib", "16", "--log-level", "Warning",
                "--audit-dir", audit.FullName },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        try
        {
            var line = await process.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken);
            Assert.StartsWith("listening on ", line, StringComparison.Ordinal);
            var endpoint = IPEndPoint.Parse(line!["listening on ".Length..]);
            await using (var client = await RawInferClient.ConnectAsync(endpoint, Key, cancellationToken: TestContext.Current.CancellationToken))
            {
                var done = await client.CompleteAsync(new SubmitFrame { Prompt = "Once", MaxTokens = 5 }, TestContext.Current.CancellationToken);
                Assert.Equal(5, done.Done.Usage.CompletionTokens);
            }

            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(timeout.Token);
            var rest = await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken)}");
            Assert.Contains("shut down (0 requests cancelled", rest, StringComparison.Ordinal);
            Assert.True(RawInfer.Safety.Audit.AuditReader.Verify(audit.FullName).IsValid);
            Assert.Contains(RawInfer.Safety.Audit.AuditReader.Query(audit.FullName, new()), r => r.Type == RawInfer.Safety.Audit.AuditEventType.RequestFinished);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            audit.Delete(recursive: true);
        }
    }

    /// <summary>A server on 127.0.0.1 over stories260K.</summary>
    private sealed class TestServer : IAsyncDisposable
    {
        private readonly RawInfer.Models.LoadedModel _model;
        private readonly CpuModelRunner _runner;
        private readonly RawInferServer _server;

        private TestServer()
        {
            _model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
            var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), _model.Config.VocabSize);
            _runner = new CpuModelRunner(_model, threads: 1);
            Engine = new InferenceEngine(_runner, tokenizer, new EngineOptions { KvCacheBytes = 16 << 20 });
            _server = new RawInferServer(Engine, tokenizer,
                new StaticApiKeyAuthenticator([(Key, new Principal("cli", KeyRole.Client, new KeyLimits()))]),
                new ServerOptions { Endpoint = new IPEndPoint(IPAddress.Loopback, 0) });
            _server.Start();
        }

        public InferenceEngine Engine { get; }

        public string Address => _server.LocalEndPoint!.ToString();

        public static Task<TestServer> StartAsync() => Task.FromResult(new TestServer());

        public async ValueTask DisposeAsync()
        {
            await _server.DisposeAsync();
            await Engine.DisposeAsync();
            _runner.Dispose();
            _model.Dispose();
        }
    }
}
