namespace RawInfer.KvCache;

/// <summary>
/// A copy-on-write request from <see cref="BlockManager.Append"/>: the sequence's last block was shared with a fork
/// and partly filled, so the sequence now owns a fresh block and the caller must copy the K/V of every layer from
/// <see cref="Source"/> to <see cref="Destination"/> (see <see cref="PagedKvStorage.CopyBlock"/>) before the model
/// writes the new tokens. The allocator has already copied the token ids.
/// </summary>
/// <param name="Source">Physical block whose K/V is copied; -1 when there is nothing to copy.</param>
/// <param name="Destination">Physical block that receives the copy; -1 when there is nothing to copy.</param>
public readonly record struct BlockCopy(int Source, int Destination)
{
    /// <summary>No copy is needed.</summary>
    public static BlockCopy None => new(-1, -1);

    /// <summary>True when the caller must copy <see cref="Source"/> to <see cref="Destination"/>.</summary>
    public bool IsNeeded => Source >= 0;
}
