namespace RawInfer.KvCache;

/// <summary>
/// One sequence's K/V in two flat arrays, as llama2.c's RunState keeps them. Allocated once at full capacity.
/// </summary>
public sealed class ContiguousKvCache : ISequenceKvCache
{
    private readonly float[] _keys;   // (layers, capacity, kvDim)
    private readonly float[] _values; // (layers, capacity, kvDim)
    private readonly int _kvDim;

    public ContiguousKvCache(int numLayers, int capacityTokens, int kvDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numLayers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvDim);
        NumLayers = numLayers;
        CapacityTokens = capacityTokens;
        _kvDim = kvDim;
        _keys = new float[checked(numLayers * capacityTokens * kvDim)];
        _values = new float[_keys.Length];
    }

    public int NumLayers { get; }

    public int CapacityTokens { get; }

    public Span<float> Key(int layer, int position) => _keys.AsSpan(Offset(layer, position), _kvDim);

    public Span<float> Value(int layer, int position) => _values.AsSpan(Offset(layer, position), _kvDim);

    /// <summary>Every position's K in one layer, row = position. (capacity, kvDim)</summary>
    public Span<float> LayerKeys(int layer) => _keys.AsSpan(Offset(layer, 0), CapacityTokens * _kvDim);

    /// <summary>Every position's V in one layer, row = position. (capacity, kvDim)</summary>
    public Span<float> LayerValues(int layer) => _values.AsSpan(Offset(layer, 0), CapacityTokens * _kvDim);

    private int Offset(int layer, int position)
    {
        if ((uint)layer >= (uint)NumLayers || (uint)position >= (uint)CapacityTokens)
        {
            ThrowOutOfRange(layer, position);
        }

        return ((layer * CapacityTokens) + position) * _kvDim;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowOutOfRange(int layer, int position) =>
        throw new ArgumentOutOfRangeException(
            nameof(position),
            $"KV cache access at layer {layer}, position {position} outside ({NumLayers} layers, {CapacityTokens} positions)");
}
