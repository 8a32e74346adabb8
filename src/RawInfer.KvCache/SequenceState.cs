namespace RawInfer.KvCache;

/// <summary>
/// One live sequence's bookkeeping. Instances are pooled by <see cref="BlockManager"/> and keep their block-table
/// array when recycled, so a steady stream of sequences allocates nothing.
/// </summary>
internal sealed class SequenceState
{
    public long Id;
    public bool Live;
    public int[] Blocks = new int[8]; // (capacity) physical block per logical block; first NumBlocks valid
    public int NumBlocks;
    public int NumTokens;
    public ulong ChainHash;           // chain hash of the last full block, BlockHash.Root when none
    public ulong ChainFingerprint;    // fingerprint chain of the last full block, BlockHash.Root when none

    public ReadOnlySpan<int> Table => Blocks.AsSpan(0, NumBlocks);

    public void EnsureCapacity(int blocks)
    {
        if (blocks > Blocks.Length)
        {
            Array.Resize(ref Blocks, Math.Max(blocks, Blocks.Length * 2));
        }
    }
}
