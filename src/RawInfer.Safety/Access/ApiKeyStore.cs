using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RawInfer.Safety.Access;

/// <summary>One key in the config file: never the key itself, only a salt and SHA-256(salt ‖ key).</summary>
public sealed record ApiKeyEntry(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("role")] KeyRole Role,
    [property: JsonPropertyName("salt")] string Salt,
    [property: JsonPropertyName("hash")] string Hash,
    [property: JsonPropertyName("limits")] KeyLimits? Limits = null);

/// <summary>The outcome of <see cref="ApiKeyStore.Reload"/>.</summary>
public sealed record ApiKeyReloadResult(bool Succeeded, int KeyCount, string? Error);

/// <summary>
/// API keys from a JSON config file (<c>{"keys":[{"id","role","salt","hash","limits"}]}</c>). Authentication hashes
/// the presented key with every entry's salt and compares every hash in constant time, so neither the comparison nor
/// which entry matched shows in the timing. Keys are random high-entropy strings (see <see cref="GenerateKey"/>), so one
/// salted SHA-256 suffices; a slow password hash would only make each connection pay for every key.
/// <see cref="Reload"/> swaps the whole set atomically and keeps the old one when the file is bad.
/// </summary>
public sealed class ApiKeyStore : IApiKeyAuthenticator
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    };

    private readonly string? _path;
    private volatile Loaded _keys;

    /// <summary>Loads <paramref name="path"/>; throws <see cref="FormatException"/> naming the file and the problem.</summary>
    public ApiKeyStore(string path)
    {
        _path = path;
        _keys = Load(path);
    }

    /// <summary>An in-memory store (tests, embedding); <see cref="Reload"/> then fails.</summary>
    public ApiKeyStore(IEnumerable<ApiKeyEntry> entries)
    {
        _keys = Build(entries, "entries");
    }

    /// <summary>Number of keys in the current set.</summary>
    public int Count => _keys.Entries.Length;

    /// <summary>Creates an entry for a key (a random salt; the plaintext is not kept).</summary>
    public static ApiKeyEntry CreateEntry(string id, KeyRole role, string plaintextKey, KeyLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentException.ThrowIfNullOrEmpty(plaintextKey);
        var salt = RandomNumberGenerator.GetBytes(16);
        return new ApiKeyEntry(id, role, Convert.ToBase64String(salt), Convert.ToBase64String(HashKey(salt, Encoding.UTF8.GetBytes(plaintextKey))), limits);
    }

    /// <summary>A new random key (256 bits, URL-safe base64 with an <c>rik_</c> prefix).</summary>
    public static string GenerateKey() =>
        "rik_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Writes a config file holding <paramref name="entries"/>.</summary>
    public static void WriteConfig(string path, IEnumerable<ApiKeyEntry> entries)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(new KeyFile([.. entries]), Json));
        File.Move(temp, path, overwrite: true);
    }

    public Principal? Authenticate(ReadOnlySpan<byte> presentedKey)
    {
        var keys = _keys;
        Span<byte> hash = stackalloc byte[32];
        Principal? match = null;
        foreach (var entry in keys.Entries)
        {
            HashKey(entry.Salt, presentedKey, hash);
            if (CryptographicOperations.FixedTimeEquals(hash, entry.Hash))
            {
                match = entry.Principal;
            }
        }

        return match;
    }

    /// <summary>The principal of a key id in the current set (per-key limits after a reload), or null.</summary>
    public Principal? Find(string keyId) => _keys.ById.GetValueOrDefault(keyId);

    /// <summary>Re-reads the config file; on any error the current keys stay in force and the error is returned.</summary>
    public ApiKeyReloadResult Reload()
    {
        if (_path is null)
        {
            return new ApiKeyReloadResult(false, Count, "this key store was not loaded from a file");
        }

        try
        {
            var loaded = Load(_path);
            _keys = loaded;
            return new ApiKeyReloadResult(true, loaded.Entries.Length, null);
        }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
        {
            return new ApiKeyReloadResult(false, Count, e.Message);
        }
    }

    private static Loaded Load(string path)
    {
        KeyFile? file;
        try
        {
            file = JsonSerializer.Deserialize<KeyFile>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"API key file {path}: {e.Message}", e);
        }

        return Build(file?.Keys ?? throw new FormatException($"API key file {path}: no \"keys\" array"), path);
    }

    private static Loaded Build(IEnumerable<ApiKeyEntry> entries, string source)
    {
        var list = new List<Stored>();
        var byId = new Dictionary<string, Principal>(StringComparer.Ordinal);
        var index = 0;
        foreach (var entry in entries)
        {
            if (entry is null || string.IsNullOrEmpty(entry.Id))
            {
                throw new FormatException($"API key file {source}: keys[{index}] has no id");
            }

            byte[] salt, hash;
            try
            {
                salt = Convert.FromBase64String(entry.Salt ?? "");
                hash = Convert.FromBase64String(entry.Hash ?? "");
            }
            catch (FormatException)
            {
                throw new FormatException($"API key file {source}: keys[{index}] ({entry.Id}): salt and hash must be base64");
            }

            if (salt.Length < 8 || hash.Length != 32)
            {
                throw new FormatException($"API key file {source}: keys[{index}] ({entry.Id}): salt must be at least 8 bytes and hash 32 bytes");
            }

            var principal = new Principal(entry.Id, entry.Role, entry.Limits ?? new KeyLimits());
            if (!byId.TryAdd(entry.Id, principal))
            {
                throw new FormatException($"API key file {source}: keys[{index}]: duplicate id {entry.Id}");
            }

            list.Add(new Stored(salt, hash, principal));
            index++;
        }

        return new Loaded([.. list], byId);
    }

    private static byte[] HashKey(byte[] salt, ReadOnlySpan<byte> key)
    {
        var hash = new byte[32];
        HashKey(salt, key, hash);
        return hash;
    }

    private static void HashKey(byte[] salt, ReadOnlySpan<byte> key, Span<byte> destination)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(salt);
        sha.AppendData(key);
        sha.GetHashAndReset(destination);
    }

    private sealed record Stored(byte[] Salt, byte[] Hash, Principal Principal);

    private sealed record Loaded(Stored[] Entries, Dictionary<string, Principal> ById);

    private sealed record KeyFile([property: JsonPropertyName("keys")] List<ApiKeyEntry>? Keys);
}
