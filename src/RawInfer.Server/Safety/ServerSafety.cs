using System.Globalization;
using System.Net;
using System.Text;
using RawInfer.Engine;
using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;
using RawInfer.Safety.DenyList;
using RawInfer.Safety.Limits;
using RawInfer.Tokenizers;

namespace RawInfer.Server.Safety;

/// <summary>
/// The safety checks of one server, composed: the key store (authentication), the admission control (suspension,
/// deny-list at the edge, rate limits), the connection event sink (audit, address throttle, abuse), the engine's
/// pieces (deny-list request guard, streaming output guard, audit event sink) and the audit log they all write to.
/// <see cref="ApplyTo(ServerOptions)"/> and <see cref="ApplyTo(EngineOptions)"/> wire them in; the server awaits
/// <see cref="WaitDurableAsync"/> before a request's final frame. Dispose after the server and the engine.
/// </summary>
public sealed partial class ServerSafety : IRequestAudit, IAsyncDisposable
{
    private readonly ServerSafetyOptions _options;
    private readonly RequestAuditTracker _tracker;
    private volatile DenyListPolicy _denyList;
    private volatile int _denyListPatterns;

    private ServerSafety(ServerSafetyOptions options, ApiKeyStore keys, DenyListPolicy denyList, int denyListPatterns, AuditLog log)
    {
        _options = options;
        Keys = keys;
        _denyList = denyList;
        _denyListPatterns = denyListPatterns;
        Log = log;
        var time = options.TimeProvider;
        Limits = new AdmissionController(options.KeyLimits, options.GlobalLimits, time);
        Abuse = new AbuseMonitor(options.Abuse, time);
        Throttle = new AddressThrottle(options.AddressThrottle, time);
        ConnectionEvents = new AuditConnectionEvents(log, Throttle, Abuse);
        var connections = ConnectionEvents.Connections;
        _tracker = new RequestAuditTracker(log, request => connections.AddressOfRequest(request.RequestId));
        Admission = new SafetyAdmissionControl(
            Limits, Abuse, () => _denyList, log, options.DecodeTokens, connections.AddressOfRequest, _tracker.Note, time);
        RequestGuard = new DenyListRequestGuard(() => _denyList, options.DecodeTokens);
        OutputGuardFactory = DenyListOutputGuard.Factory(() => _denyList);
    }

    /// <summary>The API keys; also the server's authenticator.</summary>
    public ApiKeyStore Keys { get; }

    public IApiKeyAuthenticator Authenticator => Keys;

    /// <summary>The audit log every check writes to (owned: disposed with this object).</summary>
    public AuditLog Log { get; }

    public AdmissionController Limits { get; }

    public AbuseMonitor Abuse { get; }

    public AddressThrottle Throttle { get; }

    /// <summary>For <see cref="ServerOptions.Admission"/>.</summary>
    public SafetyAdmissionControl Admission { get; }

    /// <summary>For <see cref="ServerOptions.Events"/>.</summary>
    public AuditConnectionEvents ConnectionEvents { get; }

    /// <summary>For <see cref="EngineOptions.RequestGuards"/>: the deny-list on the prompt after tokenization.</summary>
    public IRequestGuard RequestGuard { get; }

    /// <summary>For <see cref="EngineOptions.OutputGuards"/>: the deny-list on the output stream, before delivery.</summary>
    public Func<RequestContext, IOutputGuard> OutputGuardFactory { get; }

    /// <summary>For <see cref="EngineOptions.EventSink"/>: request records, tracked for the durability barrier.</summary>
    public IEngineEventSink EngineEvents => _tracker;

    /// <summary>The audit sink behind <see cref="EngineEvents"/>.</summary>
    public AuditEventSink AuditSink => _tracker.Sink;

    /// <summary>The deny-list in force.</summary>
    public DenyListPolicy DenyList => _denyList;

    /// <summary>Patterns of the deny-list in force when it came from a file (or is empty); −1 for a policy passed to Open.</summary>
    public int DenyListPatternCount => _denyListPatterns;

    /// <summary>Requests whose durability bookkeeping is still held (released after their final frame).</summary>
    internal int TrackedRequests => _tracker.TrackedRequests;

    /// <summary>
    /// Opens the audit log (recovering a torn tail), loads the keys and the deny-list. Errors name the file.
    /// </summary>
    /// <param name="options">Paths and limits.</param>
    /// <param name="keys">An in-memory key store instead of <see cref="ServerSafetyOptions.KeysFile"/>.</param>
    /// <param name="denyList">A policy instead of <see cref="ServerSafetyOptions.DenyListFile"/>.</param>
    public static ServerSafety Open(ServerSafetyOptions options, ApiKeyStore? keys = null, DenyListPolicy? denyList = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        keys ??= options.KeysFile is { } keysFile
            ? new ApiKeyStore(keysFile)
            : throw new ArgumentException("ServerSafetyOptions.KeysFile is required when no key store is given", nameof(options));
        var patterns = -1;
        if (denyList is null)
        {
            (denyList, patterns) = options.DenyListFile is { } denyFile ? LoadDenyList(denyFile) : (DenyListPolicy.Empty, 0);
        }

        var log = AuditLog.Open(options.AuditDirectory, options.Audit with { TimeProvider = options.TimeProvider });
        return new ServerSafety(options, keys, denyList, patterns, log);
    }

    /// <summary>A token-id → text function over <paramref name="tokenizer"/> (invalid UTF-8 becomes U+FFFD).</summary>
    public static Func<IReadOnlyList<int>, string> Decoder(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return ids =>
        {
            var bytes = new List<byte>(ids.Count * 4);
            var previous = -1;
            foreach (var id in ids)
            {
                if ((uint)id < (uint)tokenizer.VocabSize)
                {
                    bytes.AddRange(tokenizer.TokenBytes(previous, id));
                }

                previous = id;
            }

            return Encoding.UTF8.GetString([.. bytes]);
        };
    }

    /// <summary>The engine options with the deny-list guards appended and the audit event sink set.</summary>
    public EngineOptions ApplyTo(EngineOptions engine)
    {
        ArgumentNullException.ThrowIfNull(engine);
        return engine with
        {
            RequestGuards = [.. engine.RequestGuards, RequestGuard],
            OutputGuards = [.. engine.OutputGuards, OutputGuardFactory],
            EventSink = _tracker,
        };
    }

    /// <summary>The server options with this admission control, connection event sink, audit hooks and admin operations.</summary>
    public ServerOptions ApplyTo(ServerOptions server)
    {
        ArgumentNullException.ThrowIfNull(server);
        return server with { Admission = Admission, Events = ConnectionEvents, Audit = this, Admin = this };
    }

    /// <summary>
    /// Completes once every audit record of <paramref name="requestId"/> — its admission decision and, when the engine
    /// ran it, its terminal record — is written and fsynced. The server awaits this before the request's final frame;
    /// it throws <see cref="IOException"/> when a record could not be written (send no final frame that claims success).
    /// </summary>
    public Task WaitDurableAsync(string requestId, CancellationToken cancellationToken = default) =>
        _tracker.WaitDurableAsync(requestId, cancellationToken);

    /// <inheritdoc/>
    public void RecordRefusal(long connectionId, Principal principal, string requestId, Protocol.ErrorCode code, string reason)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(requestId);
        long sequence;
        try
        {
            sequence = Log.Enqueue(new AuditEvent(AuditEventType.RequestRefused, principal.KeyId,
                ConnectionEvents.Connections.AddressOfConnection(connectionId), requestId,
                [new("check", "server:" + code), new("reason", reason)]));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            sequence = long.MaxValue;
        }

        _tracker.Note(requestId, sequence);
    }

    /// <summary>Drops the request's bookkeeping once its final frame is out (or the client is gone).</summary>
    public void Release(string requestId) => _tracker.Release(requestId);

    /// <summary>How long a new connection from <paramref name="remote"/> must wait before it is served (zero when none).</summary>
    public TimeSpan ConnectionDelay(EndPoint? remote) =>
        ConnectionDirectory.AddressOf(remote) is { } address ? Throttle.DelayFor(address) : TimeSpan.Zero;

    /// <summary>
    /// Admin: re-reads the deny-list file; the old list stays on error (returned in the result, and audited either way).
    /// </summary>
    public DenyListReloadResult ReloadDenyList(Principal admin, long connectionId = 0) => ReloadDenyListCore(admin, connectionId, out _);

    private DenyListReloadResult ReloadDenyListCore(Principal admin, long connectionId, out long sequence)
    {
        RequireAdmin(admin);
        string? error = null;
        if (_options.DenyListFile is not { } path)
        {
            error = "no deny-list file was configured";
        }
        else
        {
            try
            {
                var (policy, patterns) = LoadDenyList(path);
                _denyList = policy;
                _denyListPatterns = patterns;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = e.Message;
            }
        }

        var count = _denyListPatterns;
        sequence = RecordAdmin(AuditEventType.AdminAction, admin.KeyId, connectionId,
            ("action", "reload-deny-list"), ("result", error ?? "ok"), ("patterns", count.ToString(CultureInfo.InvariantCulture)));
        return new DenyListReloadResult(error is null, count, error);
    }

    /// <summary>
    /// The deny-list file read as <see cref="DenyListPolicy.LoadFile"/> reads it (one phrase a line, '#' comments,
    /// blanks skipped), here so the number of phrases is known: the policy does not expose it.
    /// </summary>
    private static (DenyListPolicy Policy, int Patterns) LoadDenyList(string path)
    {
        var patterns = new List<string>();
        foreach (var line in File.ReadLines(path))
        {
            var trimmed = line.Trim();
            if (trimmed.Length != 0 && !trimmed.StartsWith('#'))
            {
                patterns.Add(trimmed);
            }
        }

        return (new DenyListPolicy(patterns), patterns.Count);
    }

    /// <summary>Closes the audit log after writing what is queued.</summary>
    public async ValueTask DisposeAsync() => await Log.DisposeAsync().ConfigureAwait(false);
}

/// <summary>The outcome of a deny-list reload: the patterns now in force (−1: unknown), or why the old list stayed.</summary>
public sealed record DenyListReloadResult(bool Succeeded, int PatternCount, string? Error);
