using System.Diagnostics;
using RawInfer.Gpu.Kernels;
using RawInfer.Native;

namespace RawInfer.Gpu.Runner;

public sealed unsafe partial class CudaModelRunner
{
    /// <summary>Captured decode graphs kept at once; the oldest goes first.</summary>
    internal const int MaxDecodeGraphs = 32;

    /// <summary>
    /// Everything a pure-decode step's launches depend on besides device memory: the row count, the metadata
    /// layout (block-table width, logit rows) and where it lies, the split plan. Buffers replaced by growth
    /// clear the cache (<see cref="ClearDecodeGraphs"/>), so their addresses need not be part of the key.
    /// </summary>
    private readonly record struct DecodeGraphKey(
        int Sequences, int BlockTableStride, PagedAttentionPlan Plan, int LogitRows, bool LogitRowsInOrder, nint Metadata);

    private readonly Dictionary<DecodeGraphKey, CudaGraph> _decodeGraphs = [];
    private readonly Queue<DecodeGraphKey> _decodeGraphOrder = new();
    private readonly Dictionary<DecodeGraphKey, int> _seenDecodeKeys = [];
    private bool _decodeGraphsEnabled;

    /// <summary>
    /// Why decode steps stopped being captured into graphs (the capture failed once; every step since runs its
    /// launches one by one, with the same results); null while graphs work or when they were not asked for.
    /// </summary>
    public string? DecodeGraphProblem { get; private set; }

    /// <summary>Decode graphs captured so far (a new shape of batch, or the first steps after buffers grew).</summary>
    public int DecodeGraphCaptures { get; private set; }

    /// <summary>Decode steps that ran as one replay of a captured graph.</summary>
    public long DecodeGraphReplays { get; private set; }

    /// <summary>Host time spent capturing and instantiating decode graphs (each capture also queues nothing).</summary>
    public TimeSpan DecodeGraphCaptureTime { get; private set; }

    /// <summary>
    /// Sightings of a shape before it is captured. On an H200 a capture of the 1B F16 model's step took 4.4–6.6 ms
    /// of host time and a replay saved 0.3 ms a step at one sequence and 0.5 ms at 100, so a capture pays after
    /// 10–20 replays. Capturing at the third sighting made the serving benchmark's continuous run slower (10,903
    /// against 12,102 tokens/s without graphs, 110M model): its batch shrinks by one sequence every few steps as
    /// requests finish, so most shapes never come back. At the eighth, shapes that last are still captured
    /// early in their life and passing ones never are.
    /// </summary>
    internal const int SightingsBeforeCapture = 8;

    /// <summary>
    /// Queues a pure-decode step. With graphs on, a step whose shape (<see cref="DecodeGraphKey"/>) has a captured
    /// graph replays it: the same launches with the same arguments, reading this step's metadata from the same
    /// addresses, so the same bits, for one submission instead of fifteen launches per layer. A shape is captured
    /// the <see cref="SightingsBeforeCapture"/>th time it comes (a shape that comes once or twice, as while
    /// sequences join and leave, is not worth a capture); until then its steps are queued launch by launch.
    /// </summary>
    private void RunDecode(in StepMetadata meta, PagedAttentionPlan plan, int seqs, int logitRows)
    {
        if (!_decodeGraphsEnabled)
        {
            EnqueueForward(meta, plan, seqs, seqs, logitRows);
            return;
        }

        var key = new DecodeGraphKey(seqs, meta.BlockTableStride, plan, logitRows, meta.LogitRowsAreAllRowsInOrder, meta.Tokens);
        if (_decodeGraphs.TryGetValue(key, out var graph))
        {
            graph.Launch(_stream);
            DecodeGraphReplays++;
            return;
        }

        var sightings = _seenDecodeKeys.GetValueOrDefault(key) + 1;
        if (sightings < SightingsBeforeCapture)
        {
            if (_seenDecodeKeys.Count >= 4 * MaxDecodeGraphs)
            {
                _seenDecodeKeys.Clear(); // bounded: shapes long gone are forgotten
            }

            _seenDecodeKeys[key] = sightings;
            EnqueueForward(meta, plan, seqs, seqs, logitRows);
            return;
        }

        _seenDecodeKeys.Remove(key);
        var started = Stopwatch.GetTimestamp();
        graph = Capture(meta, plan, seqs, logitRows);
        DecodeGraphCaptureTime += Stopwatch.GetElapsedTime(started);
        if (graph is null)
        {
            EnqueueForward(meta, plan, seqs, seqs, logitRows);
            return;
        }

        if (_decodeGraphs.Count == MaxDecodeGraphs)
        {
            var oldest = _decodeGraphOrder.Dequeue();
            _decodeGraphs.Remove(oldest, out var evicted);
            evicted!.Dispose(); // a replay already queued keeps its own reference to the executable's work
        }

        _decodeGraphs.Add(key, graph);
        _decodeGraphOrder.Enqueue(key);
        DecodeGraphCaptures++;
        graph.Launch(_stream);
        DecodeGraphReplays++;
    }

    /// <summary>Records the step's launches into a graph; null (graphs off from now on) if the capture fails.</summary>
    private CudaGraph? Capture(in StepMetadata meta, PagedAttentionPlan plan, int seqs, int logitRows)
    {
        try
        {
            CudaGraph.BeginCapture(_stream);
        }
        catch (CudaException e)
        {
            DisableDecodeGraphs(e);
            return null;
        }

        try
        {
            EnqueueForward(meta, plan, seqs, seqs, logitRows);
        }
        catch (Exception e) when (e is CudaException or CublasException)
        {
            // a launch refused under capture: leave capture mode (the result is the error we already have)
            try
            {
                CudaGraph.EndCapture(_context, _stream).Dispose();
            }
            catch (CudaException)
            {
                // expected: the refused launch invalidated the capture; ending it still leaves capture mode
            }

            DisableDecodeGraphs(e);
            return null;
        }

        try
        {
            return CudaGraph.EndCapture(_context, _stream);
        }
        catch (CudaException e)
        {
            DisableDecodeGraphs(e);
            return null;
        }
    }

    private void DisableDecodeGraphs(Exception e)
    {
        _decodeGraphsEnabled = false;
        DecodeGraphProblem = $"decode graph capture failed, launching one by one from now on: {e.Message}";
        ClearDecodeGraphs();
    }

    /// <summary>Drops every captured graph: called when a buffer their launches point into is replaced.</summary>
    private void ClearDecodeGraphs()
    {
        foreach (var graph in _decodeGraphs.Values)
        {
            graph.Dispose();
        }

        _decodeGraphs.Clear();
        _decodeGraphOrder.Clear();
        _seenDecodeKeys.Clear();
    }
}
