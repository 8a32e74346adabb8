namespace RawInfer.LlamaCompare;

/// <summary>What to compare and how (see <see cref="CompareCommand"/> for the command-line names).</summary>
internal sealed record CompareOptions
{
    public required string ModelPath { get; init; }

    /// <summary>Threads for both engines (RawInfer's pool; llama.cpp's n_threads and n_threads_batch).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Timed runs per test and engine; the median is reported.</summary>
    public int Runs { get; init; } = 5;

    /// <summary>Untimed runs per test and engine before the timed ones.</summary>
    public int WarmupRuns { get; init; } = 1;

    /// <summary>Label of the weight type in the table; null = read from the file.</summary>
    public string? DtypeLabel { get; init; }

    /// <summary>Tests to run: decode, prefill, batched.</summary>
    public IReadOnlyList<string> Tests { get; init; } = ["decode", "prefill", "batched"];

    /// <summary>Prompt tokens before the timed single-sequence decode steps.</summary>
    public int DecodePromptTokens { get; init; } = 16;

    /// <summary>Timed single-sequence decode steps per run.</summary>
    public int DecodeTokens { get; init; } = 128;

    /// <summary>Prompt length of the prefill test.</summary>
    public int PrefillTokens { get; init; } = 512;

    /// <summary>Sequences decoding together in the batched test.</summary>
    public int BatchedSequences { get; init; } = 64;

    /// <summary>Prompt tokens of each batched sequence (prefilled untimed).</summary>
    public int BatchedPromptTokens { get; init; } = 16;

    /// <summary>Timed batched decode steps per run.</summary>
    public int BatchedSteps { get; init; } = 16;

    /// <summary>Greedy steps of the logit agreement check (0 skips it).</summary>
    public int CheckSteps { get; init; } = 32;

    public double BandwidthGBs { get; init; } = 55;

    public double PeakGFlops { get; init; } = 420;

    /// <summary>Measure bandwidth and peak here (triad, FMA loop) instead of using the given figures.</summary>
    public bool MeasureMachine { get; init; }

    /// <summary>Where to write the results as JSON; null = nowhere.</summary>
    public string? JsonPath { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        if (!File.Exists(ModelPath))
        {
            throw new ArgumentException($"--model: file not found: {ModelPath}");
        }

        Positive(Threads, "--threads");
        Positive(Runs, "--runs");
        Positive(DecodePromptTokens, "--decode-prompt");
        Positive(DecodeTokens, "--decode-tokens");
        Positive(PrefillTokens, "--prompt-tokens");
        Positive(BatchedSequences, "--batched-sequences");
        Positive(BatchedPromptTokens, "--batched-prompt");
        Positive(BatchedSteps, "--batched-steps");
        if (WarmupRuns < 0 || CheckSteps < 0)
        {
            throw new ArgumentException("--warmup and --check-steps must be >= 0");
        }

        if (!(BandwidthGBs > 0) || !(PeakGFlops > 0))
        {
            throw new ArgumentException("--bandwidth-gbs and --peak-gflops must be > 0");
        }

        foreach (var test in Tests)
        {
            if (test is not ("decode" or "prefill" or "batched"))
            {
                throw new ArgumentException($"--tests: unknown test '{test}' (known: decode, prefill, batched)");
            }
        }
    }

    private static void Positive(int value, string option)
    {
        if (value <= 0)
        {
            throw new ArgumentException($"{option} must be > 0, not {value}");
        }
    }
}
