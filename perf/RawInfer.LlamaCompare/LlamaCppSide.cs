using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;

namespace RawInfer.LlamaCompare;

/// <summary>
/// llama.cpp through LLamaSharp's low-level API: a model, one context per test shape, batches built by hand and
/// <c>llama_decode</c> timed directly (no sampler, no executor), so the figure is the forward pass plus the copy of
/// the requested logits, the same work RawInfer's side does.
/// </summary>
internal sealed class LlamaCppSide : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly string _modelPath;
    private readonly int _threads;

    public LlamaCppSide(string modelPath, int threads)
    {
        _modelPath = modelPath;
        _threads = threads;
        // Weights read into memory (no mmap), as RawInfer copies its weights into anonymous memory: on this VM idle
        // file-backed pages get reclaimed, and a mapped model would pay page faults that RawInfer does not.
        var parameters = new ModelParams(modelPath) { GpuLayerCount = 0, LoadMode = LLamaLoadMode.None };
        _weights = LLamaWeights.LoadFromFile(parameters);
        VocabSize = _weights.Vocab.Count;
    }

    public int VocabSize { get; }

    /// <summary>A context for <paramref name="sequences"/> sequences of up to <paramref name="tokensPerSequence"/> tokens each.</summary>
    public LLamaContext CreateContext(int sequences, int tokensPerSequence, int batchTokens)
    {
        // Each sequence gets its own KV stream (kv_unified off, llama.cpp's default): attention of a row never
        // scans another sequence's cache, as in RawInfer's paged attention. llama.cpp rounds n_ctx up to 256.
        var parameters = new ModelParams(_modelPath)
        {
            ContextSize = (uint)(sequences * RoundUp(tokensPerSequence, 256)),
            SeqMax = (uint)sequences,
            BatchSize = (uint)batchTokens,
            UBatchSize = (uint)batchTokens,
            Threads = _threads,
            BatchThreads = _threads,
            KVUnified = false,
        };
        return _weights.CreateContext(parameters);
    }

    /// <summary>Seconds to decode <paramref name="steps"/> tokens one at a time after a prompt (prefilled untimed).</summary>
    public double DecodeSeconds(LLamaContext context, ReadOnlySpan<int> prompt, ReadOnlySpan<int> steps)
    {
        var handle = context.NativeHandle;
        handle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Length; i++)
        {
            batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        }

        Decode(handle, batch);
        var clock = Stopwatch.StartNew();
        for (var t = 0; t < steps.Length; t++)
        {
            batch.Clear();
            batch.Add(steps[t], prompt.Length + t, LLamaSeqId.Zero, true);
            Decode(handle, batch);
            _ = handle.GetLogitsIth(0)[0]; // the logits are ready (llama_decode may return before the graph finishes)
        }

        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Seconds to prefill <paramref name="prompt"/> as one batch (logits for the last row) into an empty cache.</summary>
    public double PrefillSeconds(LLamaContext context, ReadOnlySpan<int> prompt)
    {
        var handle = context.NativeHandle;
        handle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Length; i++)
        {
            batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        }

        var clock = Stopwatch.StartNew();
        Decode(handle, batch);
        _ = handle.GetLogitsIth(prompt.Length - 1)[0];
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Seconds for <paramref name="steps"/> batched decode steps of every sequence (one row each, logits for all)
    /// after their prompts (prefilled untimed, one sequence id each).
    /// </summary>
    /// <param name="prompts">(sequences, promptTokens) prompts.</param>
    /// <param name="stepTokens">(steps, sequences) the token each sequence feeds at each step.</param>
    public double BatchedDecodeSeconds(LLamaContext context, int[][] prompts, int[][] stepTokens)
    {
        var handle = context.NativeHandle;
        handle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (var s = 0; s < prompts.Length; s++)
        {
            batch.Clear();
            batch.AddRange(Tokens(prompts[s]), 0, (LLamaSeqId)s, true);
            Decode(handle, batch);
        }

        var clock = Stopwatch.StartNew();
        for (var t = 0; t < stepTokens.Length; t++)
        {
            batch.Clear();
            for (var s = 0; s < prompts.Length; s++)
            {
                batch.Add(stepTokens[t][s], prompts[s].Length + t, (LLamaSeqId)s, true);
            }

            Decode(handle, batch);
            _ = handle.GetLogitsIth(prompts.Length - 1)[0];
        }

        return clock.Elapsed.TotalSeconds;
    }

    public void Dispose() => _weights.Dispose();

    private static LLamaToken[] Tokens(int[] ids)
    {
        var tokens = new LLamaToken[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            tokens[i] = ids[i];
        }

        return tokens;
    }

    private static void Decode(SafeLLamaContextHandle handle, LLamaBatch batch)
    {
        var result = handle.Decode(batch);
        if (result != DecodeResult.Ok)
        {
            throw new InvalidOperationException($"llama_decode failed with {result} on a batch of {batch.TokenCount} tokens");
        }
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
