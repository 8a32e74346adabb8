using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RawInfer.LlamaCompare;

/// <summary>Everything one comparison measured, as printed and as written to <c>--json</c>.</summary>
internal sealed record CompareReport
{
    public required string Model { get; init; }

    public required string Dtype { get; init; }

    public required string Shape { get; init; }

    public required string Cpu { get; init; }

    public required int Threads { get; init; }

    public required int Runs { get; init; }

    public required int WarmupRuns { get; init; }

    public required double BandwidthGBs { get; init; }

    public required double PeakGFlops { get; init; }

    /// <summary>Read-only stream bandwidth in GB/s, when the machine was measured (<c>--measure-machine</c>).</summary>
    public double? ReadGBs { get; init; }

    /// <summary>"default", "given" or "measured" (triad / FMA loop).</summary>
    public required string LimitsSource { get; init; }

    public required IReadOnlyList<string> NativeLibrary { get; init; }

    public string? LogitCheck { get; init; }

    public required IReadOnlyList<TestResult> Results { get; init; }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    /// <summary>The results as a Markdown table (one row per test), with the roofline basis underneath.</summary>
    public void WriteTable(TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.WriteLine("| dtype | test | RawInfer tok/s | llama.cpp tok/s | ratio | run pairs | RawInfer % roofline | llama.cpp % roofline | load (1-min) |");
        output.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in Results)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {Dtype} | {TestLabel(r)} | {r.RawInferTokensPerSecond:F1} | {r.LlamaTokensPerSecond:F1} | {r.Ratio:F2}x | {r.PairRatioLow:F2}–{r.PairRatioHigh:F2}x | {r.RawInferRoofline * 100:F0}% | {r.LlamaRoofline * 100:F0}% | {r.LoadBefore:F2}→{r.LoadAfter:F2} |"));
        }

        output.WriteLine();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"roofline ({LimitsSource}): decode = weight bytes per token × tok/s ÷ {BandwidthGBs:F1} GB/s; prefill and batched = FLOPs/s ÷ {PeakGFlops:F0} GFLOP/s"));
        foreach (var r in Results.Where(r => r.Test == "decode" && ReadGBs is > 0))
        {
            var rawInfer = r.RooflineWorkPerRun / MachinePeak.Median(r.RawInferSeconds);
            var llama = r.RooflineWorkPerRun / MachinePeak.Median(r.LlamaSeconds);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"decode against the read-only stream ({ReadGBs:F1} GB/s): RawInfer reads {rawInfer:F1} GB/s ({rawInfer / ReadGBs * 100:F0}%), llama.cpp {llama:F1} GB/s ({llama / ReadGBs * 100:F0}%)"));
        }

        foreach (var r in Results)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {r.Test}: {r.Description}; {r.RooflineWorkPerRun:F3} G{(r.RooflineUnit == "GB/s" ? "B" : "FLOP")} per run"));
        }
    }

    public void WriteJson(string path)
    {
        using var stream = File.Create(path);
        JsonSerializer.Serialize(stream, this, JsonOptions);
    }

    private static string TestLabel(TestResult r) => r.Test switch
    {
        "decode" => "decode, 1 sequence",
        "prefill" => $"prefill {r.TokensPerRun} tokens",
        "batched" => $"batched decode, {r.Description.Split(' ')[0]} sequences",
        _ => r.Test,
    };
}
