namespace RawInfer.KvCache;

/// <summary>
/// One sequence's K/V in two flat arrays, as llama2.c's RunState keeps them. Allocated once at full capacity, on the
/// pinned heap and advised for huge pages (<see cref="HugePageAdvice"/>), as the paged pool's slabs are:
/// <c>rawinfer generate -n 1500 -t 0 --threads 2</c> on the 110m F16 model (1,020 tokens, up to the model's context)
/// decoded at 188–213 tokens/s against 168–186 with <c>RAWINFER_KV_HUGEPAGES=0</c> (three alternating pairs, Zen 5
/// VM, 2026-12-05).
/// </summary>
public sealed class ContiguousKvCache : ISequenceKvCache
{
    private readonly float[] _keys;   // (layers, capacity, kvDim) from element _keyStart on
    private readonly float[] _values; // (layers, capacity, kvDim) from element _valueStart on
    private readonly int _keyStart;   // the element of _keys on a cache line (CacheLine)
    private readonly int _valueStart;
    private readonly int _kvDim;

    public ContiguousKvCache(int numLayers, int capacityTokens, int kvDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numLayers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvDim);
        NumLayers = numLayers;
        CapacityTokens = capacityTokens;
        _kvDim = kvDim;
        _keys = GC.AllocateArray<float>(checked((numLayers * capacityTokens * kvDim) + (CacheLine.SpareBytes / sizeof(float))), pinned: true);
        _values = GC.AllocateArray<float>(_keys.Length, pinned: true);
        _ = HugePageAdvice.Advise(_keys, sizeof(float));
        _ = HugePageAdvice.Advise(_values, sizeof(float));
        _keyStart = CacheLine.StartIndex(_keys, sizeof(float));
        _valueStart = CacheLine.StartIndex(_values, sizeof(float));
    }

    public int NumLayers { get; }

    public int CapacityTokens { get; }

    public Span<float> Key(int layer, int position) => _keys.AsSpan(_keyStart + Offset(layer, position), _kvDim);

    public Span<float> Value(int layer, int position) => _values.AsSpan(_valueStart + Offset(layer, position), _kvDim);

    /// <summary>Every position's K in one layer, row = position. (capacity, kvDim)</summary>
    public Span<float> LayerKeys(int layer) => _keys.AsSpan(_keyStart + Offset(layer, 0), CapacityTokens * _kvDim);

    /// <summary>Every position's V in one layer, row = position. (capacity, kvDim)</summary>
    public Span<float> LayerValues(int layer) => _values.AsSpan(_valueStart + Offset(layer, 0), CapacityTokens * _kvDim);

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
