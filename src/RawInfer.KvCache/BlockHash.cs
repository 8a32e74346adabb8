namespace RawInfer.KvCache;

/// <summary>
/// The chained 64-bit identity of a full block: a hash over the parent block's hash and this block's token ids,
/// so one value names the whole prefix that ends with the block. Tokens are folded two per 64-bit word with a
/// 128-bit multiply (the high and low halves xor-ed), a mix with good avalanche that costs one multiply per pair.
/// The value is never trusted alone: a prefix-cache hit also compares the block's tokens and the parent's
/// fingerprint, a second chain with independent constants that no test mask narrows, so a wrong hit needs both
/// 64-bit chains to collide at once (about 2^-128 per pair of prefixes).
/// </summary>
internal static class BlockHash
{
    /// <summary>The parent hash of a sequence's first block (the empty prefix).</summary>
    public const ulong Root = 0x9E3779B97F4A7C15;

    // Odd 64-bit constants with balanced bits (the ones wyhash publishes); any such constants would do.
    private const ulong K1 = 0xA0761D6478BD642F;
    private const ulong K2 = 0xE7037ED1A0B428DB;
    private const ulong K3 = 0x8EBC6AF09C88C6E3;

    // Independent constants for the fingerprint chain (splitmix64's and murmur3's finalizer multipliers).
    private const ulong F1 = 0xBF58476D1CE4E5B9;
    private const ulong F2 = 0x94D049BB133111EB;
    private const ulong F3 = 0xFF51AFD7ED558CCD;

    public static ulong Chain(ulong parentHash, ReadOnlySpan<int> tokens) => Chain(parentHash, tokens, K1, K2, K3);

    /// <summary>The second, independent chain over the same prefix; see the type's remarks.</summary>
    public static ulong Fingerprint(ulong parentFingerprint, ReadOnlySpan<int> tokens) =>
        Chain(parentFingerprint, tokens, F1, F2, F3);

    private static ulong Chain(ulong parentHash, ReadOnlySpan<int> tokens, ulong K1, ulong K2, ulong K3)
    {
        // The length is mixed in so that a block [a] and a block [a, 0] cannot share a state.
        var h = parentHash ^ ((ulong)tokens.Length * K3);
        var i = 0;
        for (; i + 1 < tokens.Length; i += 2)
        {
            var word = (uint)tokens[i] | ((ulong)(uint)tokens[i + 1] << 32);
            h = Mum(h ^ K1, word ^ K2);
        }

        if (i < tokens.Length)
        {
            h = Mum(h ^ K1, (uint)tokens[i] ^ K3);
        }

        return Mum(h ^ K2, K3 ^ parentHash);
    }

    private static ulong Mum(ulong a, ulong b)
    {
        var high = Math.BigMul(a, b, out var low);
        return high ^ low;
    }
}
