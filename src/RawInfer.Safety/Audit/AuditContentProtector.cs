using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace RawInfer.Safety.Audit;

/// <summary>
/// Prompts and outputs in the audit trail. By default only their SHA-256 and lengths are stored; with
/// <see cref="ContentRetention.Encrypted"/> the text is also stored AES-GCM encrypted under a per-key data key, so the
/// chain covers the ciphertext, and destroying the data key (<see cref="Forget"/>) makes the text unreadable without
/// touching the chain. Data keys live in a JSON file outside the chain, rewritten atomically.
/// </summary>
public sealed class AuditContentProtector
{
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly string _keyFile;
    private readonly Lock _lock = new();
    private Dictionary<string, byte[]>? _keys;

    internal AuditContentProtector(string keyFile, ContentRetention retention)
    {
        _keyFile = keyFile;
        Retention = retention;
    }

    public ContentRetention Retention { get; }

    /// <summary>Opens the data-key file of a log directory (for the CLI's forget and query).</summary>
    public static AuditContentProtector ForDirectory(string directory, string? keyFile = null) =>
        new(keyFile ?? Path.Combine(directory, "datakeys.json"), ContentRetention.Encrypted);

    /// <summary>
    /// Record fields for a piece of content named <paramref name="name"/> ("prompt", "output"):
    /// <c>NAME_sha256</c>, <c>NAME_chars</c>, <c>NAME_bytes</c>, and when encrypting <c>NAME_enc</c>
    /// (base64 of nonce ‖ tag ‖ ciphertext, authenticated with the key id and name).
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, string>> Describe(string? keyId, string name, string text)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(text);
        var bytes = Encoding.UTF8.GetBytes(text);
        var inv = CultureInfo.InvariantCulture;
        var fields = new List<KeyValuePair<string, string>>
        {
            new(name + "_sha256", Convert.ToHexStringLower(SHA256.HashData(bytes))),
            new(name + "_chars", text.Length.ToString(inv)),
            new(name + "_bytes", bytes.Length.ToString(inv)),
        };
        if (Retention == ContentRetention.Encrypted)
        {
            var key = GetOrCreateKey(keyId);
            var sealedBytes = new byte[NonceSize + TagSize + bytes.Length];
            var nonce = sealedBytes.AsSpan(0, NonceSize);
            RandomNumberGenerator.Fill(nonce);
            using var aes = new AesGcm(key, TagSize);
            aes.Encrypt(nonce, bytes, sealedBytes.AsSpan(NonceSize + TagSize), sealedBytes.AsSpan(NonceSize, TagSize), AssociatedData(keyId, name));
            fields.Add(new(name + "_enc", Convert.ToBase64String(sealedBytes)));
        }

        return fields;
    }

    /// <summary>The stored text of <paramref name="name"/> in a record, or null when it was not stored, its key was forgotten, or it fails authentication.</summary>
    public string? TryDecrypt(AuditRecord record, string name)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Field(name + "_enc") is not { } encoded)
        {
            return null;
        }

        byte[] key;
        lock (_lock)
        {
            if (!Keys().TryGetValue(KeyName(record.KeyId), out key!))
            {
                return null;
            }
        }

        try
        {
            var sealedBytes = Convert.FromBase64String(encoded);
            if (sealedBytes.Length < NonceSize + TagSize)
            {
                return null;
            }

            var plain = new byte[sealedBytes.Length - NonceSize - TagSize];
            using var aes = new AesGcm(key, TagSize);
            aes.Decrypt(sealedBytes.AsSpan(0, NonceSize), sealedBytes.AsSpan(NonceSize + TagSize), sealedBytes.AsSpan(NonceSize, TagSize), plain, AssociatedData(record.KeyId, name));
            return Encoding.UTF8.GetString(plain);
        }
        catch (Exception e) when (e is FormatException or AuthenticationTagMismatchException)
        {
            return null;
        }
    }

    /// <summary>Destroys the key's data key (the file is rewritten without it and fsynced). Returns whether it existed.</summary>
    /// <remarks>Old copies a file system or backup may keep are outside this process's reach; keep the key file on storage you can erase.</remarks>
    public bool Forget(string keyId)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        lock (_lock)
        {
            var keys = Keys();
            if (!keys.Remove(KeyName(keyId), out var key))
            {
                return false;
            }

            CryptographicOperations.ZeroMemory(key);
            Save(keys);
            return true;
        }
    }

    private byte[] GetOrCreateKey(string? keyId)
    {
        lock (_lock)
        {
            var keys = Keys();
            if (!keys.TryGetValue(KeyName(keyId), out var key))
            {
                key = RandomNumberGenerator.GetBytes(32);
                keys[KeyName(keyId)] = key;
                Save(keys);
            }

            return key;
        }
    }

    private Dictionary<string, byte[]> Keys()
    {
        if (_keys is not null)
        {
            return _keys;
        }

        _keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (File.Exists(_keyFile))
        {
            var stored = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(_keyFile))
                ?? throw new FormatException($"data-key file {_keyFile} is empty");
            foreach (var (id, value) in stored)
            {
                _keys[id] = Convert.FromBase64String(value);
            }
        }

        return _keys;
    }

    private void Save(Dictionary<string, byte[]> keys)
    {
        var stored = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (id, key) in keys)
        {
            stored[id] = Convert.ToBase64String(key);
        }

        var temp = _keyFile + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(stream, stored);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, _keyFile, overwrite: true);
    }

    private static string KeyName(string? keyId) => keyId ?? "(none)";

    private static byte[] AssociatedData(string? keyId, string name) => Encoding.UTF8.GetBytes(KeyName(keyId) + "\n" + name);
}
