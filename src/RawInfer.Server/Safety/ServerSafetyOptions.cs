using RawInfer.Safety.Audit;
using RawInfer.Safety.Limits;
using RawInfer.Tokenizers;

namespace RawInfer.Server.Safety;

/// <summary>Where the server's safety state lives and its limits (see <see cref="ServerSafety.Open"/>).</summary>
public sealed record ServerSafetyOptions
{
    /// <summary>API key file (<c>{"keys":[...]}</c>, see <c>ApiKeyStore</c>); required unless a store is passed to Open.</summary>
    public string? KeysFile { get; init; }

    /// <summary>Deny-list file (one phrase a line, '#' comments); none = an empty list.</summary>
    public string? DenyListFile { get; init; }

    /// <summary>Audit log directory (created when missing).</summary>
    public required string AuditDirectory { get; init; }

    /// <summary>Per-key budgets for keys whose entry sets none.</summary>
    public RateLimitOptions KeyLimits { get; init; } = new();

    /// <summary>Budgets shared by all keys.</summary>
    public RateLimitOptions GlobalLimits { get; init; } = new();

    public AbuseOptions Abuse { get; init; } = new();

    public AddressThrottleOptions AddressThrottle { get; init; } = new();

    /// <summary>Audit log settings (its clock is replaced by <see cref="TimeProvider"/>).</summary>
    public AuditLogOptions Audit { get; init; } = new();

    /// <summary>Turns prompt token ids into text for the deny-list (token-id prompts); see <see cref="ServerSafety.Decoder"/>.</summary>
    public Func<IReadOnlyList<int>, string>? DecodeTokens { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The same options with <see cref="DecodeTokens"/> from <paramref name="tokenizer"/>.</summary>
    public ServerSafetyOptions WithTokenizer(ITokenizer tokenizer) => this with { DecodeTokens = ServerSafety.Decoder(tokenizer) };
}
