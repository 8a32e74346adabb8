using System.Buffers;
using System.Net;
using System.Net.Sockets;
using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.Models;
using RawInfer.Models.Llama2c;
using RawInfer.Safety.Access;
using RawInfer.Server;
using RawInfer.Tokenizers;

namespace RawInfer.Server.Tests;

/// <summary>
/// A real server on 127.0.0.1 (port 0) over stories260K: engine, CPU runner, two keys (client and admin).
/// Every engine idles with an allocator audit, so a leaked KV block faults the engine and fails the test. The runner
/// sits behind a gate (<see cref="Runner"/>) that a test may close to hold the engine between forward passes.
/// </summary>
internal sealed class ServerHarness : IAsyncDisposable
{
    public const string ClientKey = "client-key-1";
    public const string AdminKey = "admin-key-1";

    private readonly LoadedModel _model;

    public ServerHarness(ServerOptions? options = null, EngineOptions? engineOptions = null)
    {
        _model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        Tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), _model.Config.VocabSize);
        Runner = new GatedRunner(new CpuModelRunner(_model, threads: 1));
        Engine = new InferenceEngine(Runner, Tokenizer, (engineOptions ?? new EngineOptions { MaxRunningSequences = 128 }) with
        {
            CheckInvariantsWhenIdle = true,
        });
        var keys = new StaticApiKeyAuthenticator([
            (ClientKey, new Principal("client-1", KeyRole.Client, new KeyLimits())),
            (AdminKey, new Principal("admin-1", KeyRole.Admin, new KeyLimits())),
        ]);
        Server = new RawInferServer(Engine, Tokenizer, keys, (options ?? new ServerOptions()) with
        {
            Endpoint = new IPEndPoint(IPAddress.Loopback, 0),
        });
        Server.Start();
    }

    public InferenceEngine Engine { get; }

    /// <summary>The engine's runner; <see cref="GatedRunner.Close"/> holds every later forward pass.</summary>
    public GatedRunner Runner { get; }

    public ITokenizer Tokenizer { get; }

    public RawInferServer Server { get; }

    public IPEndPoint EndPoint => Server.LocalEndPoint!;

    public static CancellationToken Timeout(int seconds = 60) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    public Task<RawInferClient> ConnectAsync(string key = ClientKey) =>
        RawInferClient.ConnectAsync(EndPoint, key, cancellationToken: Timeout());

    /// <summary>A bare socket for sending hand-made bytes.</summary>
    public async Task<Socket> RawAsync(bool hello = false)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(EndPoint, Timeout());
        if (hello)
        {
            await SendAsync(socket, FrameWriter.ToArray(0, Hello(ClientKey)));
            var welcome = await ReadFrameAsync(socket);
            Assert.IsType<WelcomeFrame>(welcome?.Payload);
        }

        return socket;
    }

    public static HelloFrame Hello(string key) => new(ProtocolConstants.Version, System.Text.Encoding.UTF8.GetBytes(key), "tests");

    public static async Task SendAsync(Socket socket, byte[] bytes) => await socket.SendAsync(bytes, SocketFlags.None, Timeout());

    /// <summary>Reads one whole frame; null when the server closed the connection.</summary>
    public static async Task<(uint RequestId, FramePayload Payload)?> ReadFrameAsync(Socket socket, int timeoutSeconds = 30)
    {
        var header = new byte[ProtocolConstants.HeaderSize];
        if (!await ReadExactlyAsync(socket, header, timeoutSeconds))
        {
            return null;
        }

        var length = BitConverter.ToInt32(header, 0);
        var bytes = new byte[ProtocolConstants.HeaderSize + length];
        header.CopyTo(bytes, 0);
        Assert.True(await ReadExactlyAsync(socket, bytes.AsMemory(ProtocolConstants.HeaderSize), timeoutSeconds), "frame cut short");
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(OperationStatus.Done, FrameReader.TryReadFrame(ref reader, int.MaxValue, out var frame, out _));
        return (frame.RequestId, FrameDecoder.DecodeFromServer(frame));
    }

    /// <summary>Every frame until the server closes the connection.</summary>
    public static async Task<List<(uint RequestId, FramePayload Payload)>> ReadUntilClosedAsync(Socket socket)
    {
        var frames = new List<(uint, FramePayload)>();
        while (await ReadFrameAsync(socket) is { } frame)
        {
            frames.Add(frame);
        }

        return frames;
    }

    /// <summary>Greedy reference output of the in-process API for the same request.</summary>
    public async Task<GenerationResult> ReferenceAsync(string prompt, int maxTokens) =>
        await Engine.GenerateAsync(new GenerationRequest { Prompt = prompt, MaxTokens = maxTokens }, Timeout());

    /// <summary>Waits until the engine has no request and no used block (the cancel or disconnect reached it).</summary>
    public async Task WaitForIdleEngineAsync()
    {
        var token = Timeout(30);
        while (true)
        {
            var stats = Engine.GetStats();
            if (stats.RunningRequests == 0 && stats.WaitingRequests == 0 && stats.KvBlocksUsed == 0 && Server.InFlightRequests == 0)
            {
                return;
            }

            await Task.Delay(10, token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Runner.Open(); // a test that failed with the gate closed must not hang the shutdown
        await Server.DisposeAsync();
        await Engine.ShutdownAsync(ShutdownMode.Abort);
        Assert.Null(Engine.Fault);
        Runner.Dispose();
        _model.Dispose();
    }

    private static async Task<bool> ReadExactlyAsync(Socket socket, Memory<byte> buffer, int timeoutSeconds)
    {
        var token = Timeout(timeoutSeconds);
        var read = 0;
        while (read < buffer.Length)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer[read..], SocketFlags.None, token);
            }
            catch (SocketException)
            {
                return false; // reset by the server
            }

            if (n == 0)
            {
                Assert.True(read == 0, "connection closed inside a frame");
                return false;
            }

            read += n;
        }

        return true;
    }
}
