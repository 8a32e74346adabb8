namespace RawInfer.KvCache;

/// <summary>
/// The K/V storage of one sequence, addressed by layer and token position. The forward pass writes the new
/// token's K and V through it and reads every earlier position back. The contiguous implementation serves a
/// single sequence; the paged allocator maps a position through the sequence's block table to a slot.
/// </summary>
public interface ISequenceKvCache
{
    /// <summary>Positions this cache can hold (0 .. CapacityTokens-1).</summary>
    int CapacityTokens { get; }

    /// <summary>K of one token in one layer. (kvDim) = (kvHeads, headDim)</summary>
    Span<float> Key(int layer, int position);

    /// <summary>V of one token in one layer. (kvDim) = (kvHeads, headDim)</summary>
    Span<float> Value(int layer, int position);
}
