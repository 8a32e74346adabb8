using RawInfer.Engine;
using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;
using RawInfer.Safety.DenyList;
using RawInfer.Server.Safety;

namespace RawInfer.Server.Tests.Safety;

/// <summary>A clock that moves only when a test says so.</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>A fresh temporary directory, deleted at the end.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("rawinfer-server-safety-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // a child process may still hold a file for a moment; the OS cleans temp
        }
    }
}

/// <summary>Keys, requests and log reading shared by the safety adapter tests.</summary>
internal static class SafetyFixtures
{
    public static readonly Principal ClientPrincipal = new("client-1", KeyRole.Client, new KeyLimits());
    public static readonly Principal AdminPrincipal = new("admin-1", KeyRole.Admin, new KeyLimits());

    public static GenerationRequest Request(string id, string prompt = "Once upon a time", int maxTokens = 16, string keyId = "client-1") =>
        new() { RequestId = id, Prompt = prompt, PromptTokenIds = [1, 2, 3, 4], MaxTokens = maxTokens, KeyId = keyId };

    /// <summary>A server-safety object over in-memory keys and a policy, on a manual clock.</summary>
    public static ServerSafety Open(TempDir dir, ManualClock clock, Func<ServerSafetyOptions, ServerSafetyOptions>? configure = null, params string[] denied)
    {
        var options = new ServerSafetyOptions { AuditDirectory = dir.File("audit"), TimeProvider = clock };
        options = configure?.Invoke(options) ?? options;
        var keys = new ApiKeyStore([
            ApiKeyStore.CreateEntry(ClientPrincipal.KeyId, KeyRole.Client, "client-secret"),
            ApiKeyStore.CreateEntry(AdminPrincipal.KeyId, KeyRole.Admin, "admin-secret"),
        ]);
        return ServerSafety.Open(options, keys, new DenyListPolicy(denied));
    }

    public static IReadOnlyList<AuditRecord> Records(ServerSafety safety, AuditQuery? query = null) =>
        AuditReader.Query(safety.Log.Directory, query ?? new AuditQuery());

    /// <summary>Waits until everything queued so far is durable, then reads.</summary>
    public static async Task<IReadOnlyList<AuditRecord>> DurableRecordsAsync(ServerSafety safety, AuditQuery? query = null)
    {
        var last = safety.Log.Enqueue(new AuditEvent(AuditEventType.Custom, Fields: [new("event", "test-barrier")]));
        await safety.Log.WaitDurableAsync(last, TestContext.Current.CancellationToken);
        return Records(safety, query);
    }

    public static RequestContext Context(string id, string keyId = "client-1") => new(id, keyId, null);

    public static RequestUsage Usage(int completionTokens) =>
        new(4, completionTokens, 0, 0, TimeSpan.Zero, null, TimeSpan.Zero);
}
