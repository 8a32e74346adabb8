using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;

namespace RawInfer.Server.Tests.Safety;

/// <summary>
/// A real <c>rawinfer serve</c> process, SIGKILLed at random moments under load and restarted on the same audit
/// directory: every request whose final frame a client received has its records, and the chain verifies.
/// </summary>
public sealed class ServerKillTests(ITestOutputHelper output)
{
    private const string Key = "kill-test-key";
    private const int Kills = 5;

    // "Once upon a time" runs into "red ball" past about 60 tokens (an output denial); the forbidden prompt is denied
    // at the edge, rarely enough that the key stays under the abuse threshold.
    private static readonly string[] Prompts = ["Once upon a time", "Tom had a dog", "The sun was", "Lily liked"];
    private const string DeniedPrompt = "Please write a forbidden prompt";

    [Fact]
    public async Task A_server_killed_repeatedly_under_load_keeps_the_records_of_every_request_whose_final_frame_was_received()
    {
        using var dir = new TempDir();
        var keysFile = dir.File("keys.json");
        var denyFile = dir.File("deny.txt");
        var audit = dir.File("audit");
        ApiKeyStore.WriteConfig(keysFile, [ApiKeyStore.CreateEntry("kill-client", KeyRole.Client, Key)]);
        await File.WriteAllLinesAsync(denyFile, ["red ball", "forbidden prompt"], TestContext.Current.CancellationToken);

        var finals = new ConcurrentDictionary<string, FramePayload>(StringComparer.Ordinal);
        var random = new Random(20261128);
        var survived = 0;
        for (var round = 0; round < Kills; round++)
        {
            using var server = StartServer(keysFile, denyFile, audit);
            var endpoint = await ReadListeningAsync(server);
            using var stopLoad = new CancellationTokenSource();
            var workers = Enumerable.Range(0, 4).Select(w => DriveAsync(endpoint, finals, new Random(round * 10 + w), stopLoad.Token)).ToArray();
            // each round kills a server that has served something (a cold start on a loaded machine can take most of a
            // second), then at a random point of its load
            var before = finals.Count;
            var serving = ServerHarness.Timeout(60);
            while (finals.Count <= before)
            {
                await Task.Delay(10, serving);
            }

            await Task.Delay(random.Next(0, 1100), TestContext.Current.CancellationToken);
            server.Kill(entireProcessTree: true); // SIGKILL: no drain, no flush, no close
            await server.WaitForExitAsync(TestContext.Current.CancellationToken);
            await stopLoad.CancelAsync();
            await Task.WhenAll(workers);
            survived++;
        }

        // recovery: the next open truncates a torn tail and records it
        await (await Task.Run(() => AuditLog.Open(audit), TestContext.Current.CancellationToken)).DisposeAsync();
        var verify = AuditReader.Verify(audit);
        Assert.True(verify.IsValid, verify.Damage?.ToString());

        var records = AuditReader.Query(audit, new AuditQuery());
        var byRequest = records.Where(r => r.RequestId is not null).ToLookup(r => r.RequestId!, StringComparer.Ordinal);
        var missing = finals.Keys.Where(id => !byRequest[id].Any(IsTerminal)).ToList();
        output.WriteLine($"kills survived: {survived}; final frames received: {finals.Count} " +
            $"(DONE {finals.Values.Count(f => f is DoneFrame)}, ERROR {finals.Values.Count(f => f is ErrorFrame)}); records: {verify.Records}; " +
            $"log opens: {records.Count(r => r.Type == AuditEventType.LogOpened)}, recoveries: {records.Count(r => r.Type == AuditEventType.Recovery)}");
        Assert.Equal(Kills, survived);
        Assert.True(finals.Count >= Kills, $"only {finals.Count} final frames were received");
        Assert.Contains(finals.Values, f => f is DoneFrame);
        Assert.True(missing.Count == 0, $"{missing.Count} requests got a final frame but have no terminal record, e.g. {string.Join(", ", missing.Take(5))}");
        Assert.Equal(Kills + 1, records.Count(r => r.Type == AuditEventType.LogOpened));
    }

    private static bool IsTerminal(AuditRecord r) =>
        r.Type is AuditEventType.RequestFinished or AuditEventType.PolicyDenied or AuditEventType.RateLimited or AuditEventType.RequestRefused;

    private static Process StartServer(string keysFile, string denyFile, string audit)
    {
        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "rawinfer.dll"), "serve",
            "--model", TestPaths.Model("stories260K.bin"), "--tokenizer", TestPaths.Model("tok512.bin"),
            "--listen", "127.0.0.1:0", "--threads", "1", "--log-level", "Warning",
            "--keys", keysFile, "--deny-list", denyFile, "--audit-dir", audit,
        })
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info) ?? throw new InvalidOperationException("could not start the server process");
    }

    /// <summary>The <c>dotnet</c> host running this test (so the child uses the same runtime).</summary>
    private static string DotnetHost()
    {
        var fromEnv = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromEnv) && File.Exists(fromEnv))
        {
            return fromEnv;
        }

        // RuntimeDirectory is DOTNET_ROOT/shared/Microsoft.NETCore.App/VERSION/
        var root = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var host = Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
        return File.Exists(host) ? host : "dotnet";
    }

    private static async Task<IPEndPoint> ReadListeningAsync(Process server)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await server.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            const string Prefix = "listening on ";
            if (line.StartsWith(Prefix, StringComparison.Ordinal))
            {
                return IPEndPoint.Parse(line[Prefix.Length..].Trim());
            }
        }

        throw new InvalidOperationException("the server exited before listening: " + await server.StandardError.ReadToEndAsync(timeout.Token));
    }

    /// <summary>
    /// One connection keeping up to four requests in flight until the server dies; every DONE or ERROR received is
    /// noted under the server's request id (<c>c{session}-r{request}</c>).
    /// </summary>
    private static async Task DriveAsync(IPEndPoint endpoint, ConcurrentDictionary<string, FramePayload> finals, Random random, CancellationToken stop)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, stop);
            await socket.SendAsync(FrameWriter.ToArray(0, ServerHarness.Hello(Key)), SocketFlags.None, stop);
            using var frames = new FrameStream(socket);
            if (await frames.ReadAsync(stop) is not (_, WelcomeFrame welcome))
            {
                return;
            }

            var session = welcome.SessionId.ToString(CultureInfo.InvariantCulture);
            using var slots = new SemaphoreSlim(4);
            var next = 0u;
            var sender = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    await slots.WaitAsync(stop);
                    var prompt = random.Next(25) == 0 ? DeniedPrompt : Prompts[random.Next(Prompts.Length)];
                    var submit = new SubmitFrame { Prompt = prompt, MaxTokens = random.Next(4, 120) };
                    await socket.SendAsync(FrameWriter.ToArray(++next, submit), SocketFlags.None, stop);
                }
            }, stop);
            while (await frames.ReadAsync(stop) is { } frame)
            {
                var (requestId, payload) = frame;
                if (payload is DoneFrame or ErrorFrame && requestId != 0)
                {
                    finals[string.Create(CultureInfo.InvariantCulture, $"c{session}-r{requestId}")] = payload;
                    slots.Release();
                }
            }

            await sender.ContinueWith(static _ => { }, TaskScheduler.Default);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // the server was killed
        }
    }

    /// <summary>Whole frames from a socket; null at the end of the stream (a reset ends it too).</summary>
    private sealed class FrameStream(Socket socket) : IDisposable
    {
        private readonly NetworkStream _stream = new(socket, ownsSocket: false);
        private byte[] _buffer = new byte[64 << 10];
        private int _start;
        private int _end;

        public async Task<(uint RequestId, FramePayload Payload)?> ReadAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                if (TryParse(out var frame))
                {
                    return frame;
                }

                if (_end == _buffer.Length)
                {
                    Array.Resize(ref _buffer, _buffer.Length * 2);
                }

                var n = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
                if (n == 0)
                {
                    return null;
                }

                _end += n;
            }
        }

        public void Dispose() => _stream.Dispose();

        private bool TryParse(out (uint, FramePayload) frame)
        {
            frame = default;
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(_buffer, _start, _end - _start));
            if (FrameReader.TryReadFrame(ref reader, int.MaxValue, out var raw, out var violation) != OperationStatus.Done)
            {
                Assert.Null(violation);
                if (_start > 0)
                {
                    Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
                    _end -= _start;
                    _start = 0;
                }

                return false;
            }

            frame = (raw.RequestId, FrameDecoder.DecodeFromServer(raw));
            _start += (int)reader.Consumed;
            return true;
        }
    }
}
