using System.Diagnostics;
using RawInfer.Cpu;
using RawInfer.Cpu.Runner;
using RawInfer.Engine.Runner;
using RawInfer.KvCache;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.LlamaCompare;

/// <summary>
/// RawInfer's CPU backend on the same GGUF file: single-sequence decode through <see cref="CpuTransformer"/>
/// (its decode path), prefill and batched decode through <see cref="CpuModelRunner"/> with batches built the
/// way the engine builds them (a <see cref="BlockManager"/> hands out slots and block tables), minus the
/// scheduler and the sampler.
/// </summary>
internal sealed class RawInferSide : IDisposable
{
    private const int BlockSize = BlockManager.DefaultBlockSize;
    private readonly LoadedModel _model;
    private readonly int _threads;

    public RawInferSide(string modelPath, int threads)
    {
        _model = GgufLlamaLoader.Load(modelPath);
        _threads = threads;

        // as the CLI's CPU paths run it (ModelRunnerFactory.PrepareForCpu): Q8_0 rows rewritten in place into the
        // CPU layout, no copy beside them, F16 halves scaled; RAWINFER_CPU_LAYOUT=0 keeps the weights as the file has them
        if (Environment.GetEnvironmentVariable("RAWINFER_CPU_LAYOUT") != "0")
        {
            _ = CpuWeightLayout.TryRewriteInPlace(_model, out _);
        }
    }

    public ModelConfig Config => _model.Config;

    /// <summary>What was rewritten in place for the CPU (as the CLI runs the model: <see cref="CpuWeightLayout.Describe"/>), or null.</summary>
    public string? Rewritten => _model.WeightsRewritten ? CpuWeightLayout.Describe(_model.Weights) : null;

    public LlamaWeights Weights => _model.Weights;

    /// <summary>Logits (vocab) after the prompt, from the batched runner (the prompt as one prefill chunk).</summary>
    public float[] RunnerPromptLogits(int[] prompt)
    {
        using var runner = new RunnerHarness(_model, _threads, maxTokens: prompt.Length, maxSequences: 1, contextTokens: prompt.Length);
        runner.Blocks.Allocate(0, prompt);
        runner.Batch.Clear();
        runner.AddRows(0, prompt, 0, wantLogits: true);
        runner.Execute();
        return runner.Logits.AsSpan(0, Config.VocabSize).ToArray();
    }

    public CpuTransformer CreateTransformer() => new(_model, _threads);

    /// <summary>
    /// Seconds to decode <paramref name="steps"/> tokens one at a time after a prompt (prefilled untimed) into
    /// <paramref name="kv"/>, made once per test and overwritten from position 0 by every run, as llama.cpp's side
    /// clears and reuses its context's cache (a fresh cache per run would add its first-touch page faults to the timed
    /// steps; measured level within the VM's noise, F16 decode 2026-12-05).
    /// </summary>
    public static double DecodeSeconds(CpuTransformer transformer, ContiguousKvCache kv, ReadOnlySpan<int> prompt, ReadOnlySpan<int> steps)
    {
        for (var i = 0; i < prompt.Length; i++)
        {
            transformer.Forward(prompt[i], i, kv);
        }

        var clock = Stopwatch.StartNew();
        for (var t = 0; t < steps.Length; t++)
        {
            transformer.Forward(steps[t], prompt.Length + t, kv);
        }

        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>A runner with one prompt in one prefill batch, ready for <see cref="PrefillSeconds"/>.</summary>
    public RunnerHarness CreatePrefill(int[] prompt)
    {
        var runner = new RunnerHarness(_model, _threads, prompt.Length, 1, prompt.Length);
        runner.Blocks.Allocate(0, prompt);
        runner.Batch.Clear();
        runner.AddRows(0, prompt, 0, wantLogits: true);
        return runner;
    }

    /// <summary>Seconds for one prefill step of the whole prompt (rewriting the same slots each time).</summary>
    public static double PrefillSeconds(RunnerHarness runner)
    {
        var clock = Stopwatch.StartNew();
        runner.Execute();
        return clock.Elapsed.TotalSeconds;
    }

    public RunnerHarness CreateBatched(int sequences, int promptTokens, int steps) =>
        new(_model, _threads, maxTokens: sequences * promptTokens, maxSequences: sequences, contextTokens: promptTokens + steps);

    /// <summary>
    /// Seconds for <paramref name="stepTokens"/>.Length batched decode steps of every sequence (one row each, logits
    /// for all) after their prompts, which are prefilled together in one untimed step.
    /// </summary>
    /// <param name="prompts">(sequences, promptTokens) prompts.</param>
    /// <param name="stepTokens">(steps, sequences) the token each sequence feeds at each step.</param>
    public static double BatchedDecodeSeconds(RunnerHarness runner, int[][] prompts, int[][] stepTokens)
    {
        var batch = runner.Batch;
        batch.Clear();
        for (var s = 0; s < prompts.Length; s++)
        {
            runner.Blocks.Allocate(s, prompts[s]);
            runner.AddRows(s, prompts[s], 0, wantLogits: true);
        }

        runner.Execute();
        var clock = Stopwatch.StartNew();
        for (var t = 0; t < stepTokens.Length; t++)
        {
            batch.Clear();
            for (var s = 0; s < prompts.Length; s++)
            {
                var token = stepTokens[t].AsSpan(s, 1);
                runner.Blocks.Append(s, token);
                runner.AddRows(s, token, prompts[s].Length + t, wantLogits: true);
            }

            runner.Execute();
        }

        var seconds = clock.Elapsed.TotalSeconds;
        for (var s = 0; s < prompts.Length; s++)
        {
            runner.Blocks.Free(s);
        }

        return seconds;
    }

    public void Dispose() => _model.Dispose();
}
