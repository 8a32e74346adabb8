namespace RawInfer.Safety.Access;

/// <summary>What an API key may do.</summary>
public enum KeyRole
{
    /// <summary>Submits requests; sees only its own requests and summary stats.</summary>
    Client,

    /// <summary>Also detailed stats, audit queries, key reload and suspension lifting.</summary>
    Admin,
}

/// <summary>Optional per-key limits; null fields fall back to the server's defaults.</summary>
public sealed record KeyLimits(
    int? RequestsPerMinute = null,
    int? InputTokensPerMinute = null,
    int? OutputTokensPerMinute = null,
    int? MaxInFlight = null);

/// <summary>An authenticated caller: the key's id (never the key itself), its role and its limits.</summary>
public sealed record Principal(string KeyId, KeyRole Role, KeyLimits Limits)
{
    public bool IsAdmin => Role == KeyRole.Admin;
}

/// <summary>Checks a presented API key. Implementations compare in constant time and never store plaintext keys.</summary>
public interface IApiKeyAuthenticator
{
    /// <summary>The principal the key belongs to, or null when no key matches.</summary>
    Principal? Authenticate(ReadOnlySpan<byte> presentedKey);
}
