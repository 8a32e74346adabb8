using System.Text;
using RawInfer.Safety.Access;
using Xunit;

namespace RawInfer.Safety.Tests.Access;

public sealed class ApiKeyStoreTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Keys_authenticate_to_their_principal_and_the_file_holds_no_plaintext()
    {
        var aliceKey = ApiKeyStore.GenerateKey();
        var adminKey = ApiKeyStore.GenerateKey();
        var path = _dir.File("keys.json");
        ApiKeyStore.WriteConfig(path,
        [
            ApiKeyStore.CreateEntry("alice", KeyRole.Client, aliceKey, new KeyLimits(RequestsPerMinute: 5)),
            ApiKeyStore.CreateEntry("root", KeyRole.Admin, adminKey),
        ]);

        var store = new ApiKeyStore(path);
        var alice = store.Authenticate(Encoding.UTF8.GetBytes(aliceKey));
        Assert.Equal(new Principal("alice", KeyRole.Client, new KeyLimits(RequestsPerMinute: 5)), alice);
        Assert.True(store.Authenticate(Encoding.UTF8.GetBytes(adminKey))!.IsAdmin);
        Assert.Null(store.Authenticate(Encoding.UTF8.GetBytes(aliceKey + "x")));
        Assert.Null(store.Authenticate([]));
        var text = File.ReadAllText(path);
        Assert.DoesNotContain(aliceKey, text, StringComparison.Ordinal);
        Assert.Contains("\"role\": \"admin\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_key_under_two_entries_gets_different_salts_and_hashes()
    {
        var a = ApiKeyStore.CreateEntry("a", KeyRole.Client, "same");
        var b = ApiKeyStore.CreateEntry("b", KeyRole.Client, "same");
        Assert.NotEqual(a.Salt, b.Salt);
        Assert.NotEqual(a.Hash, b.Hash);
    }

    [Fact]
    public void Reload_swaps_the_set_and_a_bad_file_keeps_the_old_one_with_an_error()
    {
        var path = _dir.File("keys.json");
        ApiKeyStore.WriteConfig(path, [ApiKeyStore.CreateEntry("old", KeyRole.Client, "k1")]);
        var store = new ApiKeyStore(path);

        ApiKeyStore.WriteConfig(path, [ApiKeyStore.CreateEntry("new", KeyRole.Admin, "k2")]);
        var ok = store.Reload();
        Assert.True(ok.Succeeded);
        Assert.Null(store.Authenticate("k1"u8));
        Assert.Equal("new", store.Authenticate("k2"u8)?.KeyId);

        File.WriteAllText(path, "{ \"keys\": [ { \"id\": \"x\", \"role\": \"client\", \"salt\": \"!!\", \"hash\": \"\" } ] }");
        var bad = store.Reload();
        Assert.False(bad.Succeeded);
        Assert.Contains("keys[0] (x)", bad.Error, StringComparison.Ordinal);
        Assert.Equal("new", store.Authenticate("k2"u8)?.KeyId);

        File.WriteAllText(path, "not json");
        Assert.False(store.Reload().Succeeded);
        Assert.Equal(1, store.Count);
    }

    [Fact]
    public void Duplicate_ids_are_refused_naming_the_entry()
    {
        var e = Assert.Throws<FormatException>(() => new ApiKeyStore(
            [ApiKeyStore.CreateEntry("dup", KeyRole.Client, "a"), ApiKeyStore.CreateEntry("dup", KeyRole.Client, "b")]));
        Assert.Contains("keys[1]: duplicate id dup", e.Message, StringComparison.Ordinal);
    }
}
