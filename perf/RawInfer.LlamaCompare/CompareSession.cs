using System.Globalization;
using RawInfer.Models;

namespace RawInfer.LlamaCompare;

/// <summary>One comparison from start to end: load both engines, describe them, check logits, run the tests.</summary>
internal static class CompareSession
{
    public static CompareReport Run(CompareOptions options, string limitsSource, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        NativeInfo.CaptureLog();
        using var rawInfer = new RawInferSide(options.ModelPath, options.Threads);
        using var llama = new LlamaCppSide(options.ModelPath, options.Threads);
        var c = rawInfer.Config;
        if (llama.VocabSize != c.VocabSize)
        {
            throw new InvalidOperationException($"vocabulary sizes differ: RawInfer {c.VocabSize}, llama.cpp {llama.VocabSize}");
        }

        var dtype = options.DtypeLabel ?? rawInfer.Weights.Layers[0].Wq.Type.ToString().ToLowerInvariant();
        var shape = string.Create(CultureInfo.InvariantCulture,
            $"dim {c.Dim}, hidden {c.HiddenDim}, {c.NumLayers} layers, {c.NumHeads} heads ({c.NumKvHeads} KV), vocab {c.VocabSize}, {c.ParameterCount / 1e6:F1}M parameters");
        output.WriteLine($"model: {options.ModelPath} ({dtype}; {shape}){(rawInfer.Rewritten is { } rewrite ? "; RawInfer: " + rewrite : "")}");
        output.WriteLine($"machine: {CpuName()}, {Environment.ProcessorCount} logical cores; threads: {options.Threads} for both engines");
        var native = NativeInfo.Describe();
        foreach (var line in native)
        {
            output.WriteLine(line);
        }

        if (NativeInfo.Warnings() is { Length: > 0 } warnings)
        {
            output.WriteLine($"llama.cpp warnings: {warnings.ReplaceLineEndings(" | ")}");
        }

        var comparison = new Comparison(options, rawInfer, llama, output);
        double? readGBs = null;
        if (options.MeasureMachine)
        {
            output.WriteLine($"measuring the machine with {options.Threads} threads (triad, read-only stream, FMA loop)...");
            comparison.BandwidthGBs = MachinePeak.TriadGBs(options.Threads);
            readGBs = MachinePeak.ReadGBs(options.Threads);
            comparison.PeakGFlops = MachinePeak.FmaGFlops(options.Threads);
            limitsSource = "measured";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"measured: triad {comparison.BandwidthGBs:F1} GB/s over 3 arrays of {MachinePeak.TriadArrayBytes(options.Threads) >> 20} MiB (last-level cache {MachinePeak.LastLevelCacheBytes() >> 20} MiB), read-only {readGBs:F1} GB/s over {2 * MachinePeak.TriadArrayBytes(options.Threads) >> 20} MiB, FMA {comparison.PeakGFlops:F0} GFLOP/s (medians of 9)"));
        }

        string? check = null;
        if (options.CheckSteps > 0)
        {
            var prompt = new int[8];
            var random = new Random(7);
            prompt[0] = 1; // BOS, as a real prompt starts
            for (var i = 1; i < prompt.Length; i++)
            {
                prompt[i] = random.Next(3, c.VocabSize);
            }

            check = LogitCheck.Run(rawInfer, llama, prompt, options.CheckSteps).ToString();
            output.WriteLine($"logit check (same 8-token prompt): {check}");
        }

        var results = new List<TestResult>();
        foreach (var test in options.Tests)
        {
            output.WriteLine($"{test}:");
            results.Add(comparison.Run(test));
        }

        output.WriteLine();
        return new CompareReport
        {
            Model = options.ModelPath, Dtype = dtype, Shape = shape, Cpu = CpuName(), Threads = options.Threads,
            Runs = options.Runs, WarmupRuns = options.WarmupRuns, BandwidthGBs = comparison.BandwidthGBs,
            PeakGFlops = comparison.PeakGFlops, ReadGBs = readGBs, LimitsSource = limitsSource, NativeLibrary = native,
            LogitCheck = check, Results = results,
        };
    }

    /// <summary>The CPU's model name from /proc/cpuinfo (Linux), else the architecture.</summary>
    private static string CpuName()
    {
        const string path = "/proc/cpuinfo";
        if (File.Exists(path))
        {
            foreach (var line in File.ReadLines(path))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is var colon and > 0)
                {
                    return line[(colon + 1)..].Trim();
                }
            }
        }

        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    }
}
