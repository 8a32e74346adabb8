using System.Net;
using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.Models;
using RawInfer.Models.Llama2c;
using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;
using RawInfer.Safety.DenyList;
using RawInfer.Safety.Limits;
using RawInfer.Server.Safety;
using RawInfer.Tokenizers;

namespace RawInfer.Server.Tests.Safety;

/// <summary>
/// A real server on 127.0.0.1 over stories260K with every safety check wired in through <see cref="ServerSafety"/>:
/// keys (client, admin, and a client with a small output budget), the deny-list "red ball" and "forbidden prompt",
/// and an audit log in a temporary directory. With <c>keysFromFile</c> the keys live in <see cref="KeysFile"/>
/// (so a reload can pick up new ones, see <see cref="WriteKeys"/>).
/// </summary>
internal sealed class SafeServerHarness : IAsyncDisposable
{
    public const string ClientKey = "client-secret";
    public const string AdminKey = "admin-secret";
    public const string BudgetKey = "budget-secret";
    public const int BudgetOutputTokensPerMinute = 100;

    private readonly TempDir _dir = new();
    private readonly LoadedModel _model;
    private readonly CpuModelRunner _runner;

    public SafeServerHarness(Func<ServerSafetyOptions, ServerSafetyOptions>? configure = null, bool keysFromFile = false)
    {
        _model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        Tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), _model.Config.VocabSize);
        _runner = new CpuModelRunner(_model, threads: 1);
        var options = new ServerSafetyOptions { AuditDirectory = AuditDirectory }.WithTokenizer(Tokenizer);
        ApiKeyStore? keys = null;
        if (keysFromFile)
        {
            WriteKeys();
            options = options with { KeysFile = KeysFile };
        }
        else
        {
            keys = new ApiKeyStore(BaseKeys);
        }

        Safety = ServerSafety.Open(configure?.Invoke(options) ?? options, keys, new DenyListPolicy(["red ball", "forbidden prompt"]));
        Engine = new InferenceEngine(_runner, Tokenizer, Safety.ApplyTo(new EngineOptions { MaxRunningSequences = 64, CheckInvariantsWhenIdle = true }));
        Server = new RawInferServer(Engine, Tokenizer, Safety.Authenticator, Safety.ApplyTo(new ServerOptions
        {
            Endpoint = new IPEndPoint(IPAddress.Loopback, 0),
        }));
        Server.Start();
    }

    public string AuditDirectory => _dir.File("audit");

    /// <summary>The key file when the harness was built with <c>keysFromFile</c>.</summary>
    public string KeysFile => _dir.File("keys.json");

    private static ApiKeyEntry[] BaseKeys =>
    [
        ApiKeyStore.CreateEntry("client-1", KeyRole.Client, ClientKey),
        ApiKeyStore.CreateEntry("admin-1", KeyRole.Admin, AdminKey),
        ApiKeyStore.CreateEntry("budget-1", KeyRole.Client, BudgetKey, new KeyLimits(OutputTokensPerMinute: BudgetOutputTokensPerMinute)),
    ];

    /// <summary>Writes the three base keys plus <paramref name="extra"/> to <see cref="KeysFile"/> (a reload picks them up).</summary>
    public void WriteKeys(params ApiKeyEntry[] extra) => ApiKeyStore.WriteConfig(KeysFile, [.. BaseKeys, .. extra]);

    public ServerSafety Safety { get; }

    public InferenceEngine Engine { get; }

    public ITokenizer Tokenizer { get; }

    public RawInferServer Server { get; }

    public Task<RawInferClient> ConnectAsync(string key = ClientKey) =>
        RawInferClient.ConnectAsync(Server.LocalEndPoint!, key, cancellationToken: ServerHarness.Timeout());

    /// <summary>What is on disk now (no waiting: the point is what the barrier already made durable).</summary>
    public IReadOnlyList<AuditRecord> Records(AuditQuery query) => AuditReader.Query(AuditDirectory, query);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await Engine.ShutdownAsync(ShutdownMode.Abort);
        Assert.Null(Engine.Fault);
        await Safety.DisposeAsync();
        var verify = AuditReader.Verify(AuditDirectory);
        Assert.True(verify.IsValid, verify.Damage?.ToString());
        _runner.Dispose();
        _model.Dispose();
        _dir.Dispose();
    }
}
