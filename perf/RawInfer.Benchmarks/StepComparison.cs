using System.Diagnostics;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Runner;
using RawInfer.Cpu.Threading;

namespace RawInfer.Benchmarks;

/// <summary>
/// One CPU runner step measured with an internal switch of the kernels on and off, alternating within one
/// process (ABBA: on, off, off, on, ...), so that the shared VM's drift, which moves whole runs by a third within
/// minutes, weighs on both sides alike; prints each side's median and quartiles and the ratio. BenchmarkDotNet
/// runs each case in its own process one after the other, which on such a machine cannot resolve a 5–15% change.
/// Usage (after the solution is built):
///   dotnet run -c Release --project perf/RawInfer.Benchmarks -- step-ab --switch prefetch --sequences 64 [--model m.gguf]
///   dotnet run -c Release --project perf/RawInfer.Benchmarks -- step-ab --switch prefetch --prompt 512 [--model m.gguf]
/// --switch: prefetch (<see cref="GemmF32.PrefetchTiles"/>), tiled (<see cref="GemmF32.UseTiled512"/>), tiled-256
/// (<see cref="GemmF32.UseTiled256"/>), widen-256 (<see cref="WidenInRegisters.Narrow"/>), values
/// (<see cref="PrefillAttention.GroupedValues"/>), scales (<see cref="MatVecQ8_0.UseDecodedScales"/>), row-prefetch
/// (<see cref="MatVecQ8_0.PrefetchRows"/>), grouped (<see cref="DecodeRowGrouping.FourRows"/> and
/// <see cref="DecodeRowGrouping.FourRowsQ8_0"/>), f16-prefetch (<see cref="MatVecF16.PrefetchStream"/>), int8
/// (<see cref="GemmQ8_0.Enabled"/>: Q8_0 products in integers or widened), half-multiply
/// (<see cref="IHalfRebias.UseMultiply"/>: F16 weights rebiased by a multiply or in integers), scale-lookup
/// (<see cref="MatVecQ8_0.ScaleLookup"/>), shared-x (<see cref="GemmJob.ShareQuantizedX"/>), slices
/// (<see cref="MatVecJob.SliceChunks"/>), steal (<see cref="ShareTails.Enabled"/>), via-gemm (<see cref="MatVecF32.ViaGemm"/>),
/// f16-via-gemm (<see cref="MatVecF16.ViaGemm"/>), bf16-via-gemm (<see cref="MatVecBF16.ViaGemm"/>), q8-via-gemm
/// (<see cref="MatVecQ8_0.ViaGemm"/>), q8-fold-rows (<see cref="GemmQ8_0.FoldAcrossRows"/>), q8-prefetch
/// (<see cref="GemmQ8_0.PrefetchRows"/>), q8-packed-groups (<see cref="GemmQ8_0.PackFromGroups"/>), q8-in-place (two
/// runners of a Q8_0 --model, one rewritten in place by <see cref="RawInfer.Cpu.CpuWeightLayout"/>, alternating),
/// prefill-runs (<see cref="PrefillAttention.Enabled"/>), attention-256 (<see cref="PagedAttention.Vector256Enabled"/>) or
/// prefetch-lead (<see cref="WidenInRegisters.ShortLeadForAliasedRows"/>);
/// --sequences N: a decode step of N sequences with 128 tokens of context each; --prompt N: a prefill of N tokens
/// as one chunk; --part attention: only one layer's attention of that prefill, on one thread
/// (<see cref="PrefillAttentionFixture"/>); --part decode: 32 tokens of single-sequence decode through
/// <see cref="RawInfer.Cpu.CpuTransformer"/> (<see cref="DecodeFixture"/>), neither --sequences nor --prompt; --part gemm:
/// the products of one step of the 110m shape against --sequences X rows on one thread (<see cref="GemmStepBenchmarks"/>'s
/// weights, --type f32|f16|q8_0, default q8_0); --model: a GGUF or llama2.c file (default: the synthetic 110M F32 checkpoint);
/// --steps (default 60) and --threads (default 2).
/// </summary>
internal static class StepComparison
{
    private const int Context = 128;
    private const int DecodeTokens = 32;

    public static int Run(string[] args)
    {
        string? model = null, toggle = null, part = null, type = "q8_0";
        int sequences = 0, prompt = 0, steps = 60, threads = 2;
        if (args.Length % 2 != 0)
        {
            return Usage($"{args[^1]} needs a value");
        }

        for (var i = 0; i < args.Length; i += 2)
        {
            var value = args[i + 1];
            var ok = args[i] switch
            {
                "--model" => (model = value) is not null,
                "--switch" => (toggle = value) is not null,
                "--part" => (part = value) is "step" or "attention" or "decode" or "gemm",
                "--type" => (type = value) is "f32" or "f16" or "q8_0",
                "--sequences" => int.TryParse(value, out sequences) && sequences >= 0,
                "--prompt" => int.TryParse(value, out prompt) && prompt >= 0,
                "--steps" => int.TryParse(value, out steps),
                "--threads" => int.TryParse(value, out threads) && threads > 0,
                _ => false,
            };
            if (!ok)
            {
                return Usage($"bad option or value: {args[i]} {value}");
            }
        }

        if (model is not null && !File.Exists(model))
        {
            return Usage($"model file not found: {model}");
        }

        var inPlaceSide = true; // q8-in-place: which of the two runners steps
        Action<bool> set = toggle switch
        {
            "prefetch" => on => GemmF32.PrefetchTiles = on,
            "tiled" => on => GemmF32.UseTiled512 = on,
            "tiled-256" => on => GemmF32.UseTiled256 = on,
            "widen-256" => on => WidenInRegisters.Narrow = on,
            "values" => on => PrefillAttention.GroupedValues = on,
            "scales" => on => MatVecQ8_0.UseDecodedScales = on,
            "row-prefetch" => on => MatVecQ8_0.PrefetchRows = on,
            "grouped" => on => DecodeRowGrouping.FourRows = DecodeRowGrouping.FourRowsQ8_0 = on,
            "f16-prefetch" => on => MatVecF16.PrefetchStream = on,
            "int8" => on => GemmQ8_0.Enabled = on,
            "half-multiply" => on => IHalfRebias.UseMultiply = on,
            "scale-lookup" => on => MatVecQ8_0.ScaleLookup = on,
            "shared-x" => on => GemmJob.ShareQuantizedX = on,
            "slices" => on => MatVecJob.SliceChunks = on,
            "steal" => on => ShareTails.Enabled = on,
            "via-gemm" => on => MatVecF32.ViaGemm = on,
            "f16-via-gemm" => on => MatVecF16.ViaGemm = on,
            "bf16-via-gemm" => on => MatVecBF16.ViaGemm = on,
            "q8-via-gemm" => on => MatVecQ8_0.ViaGemm = on,
            "q8-fold-rows" => on => GemmQ8_0.FoldAcrossRows = on,
            "q8-prefetch" => on => GemmQ8_0.PrefetchRows = on,
            "q8-vnni" => on => GemmQ8_0.Vnni = on,
            "q8-interleaved" => on => GemmQ8_0.UseInterleaved = on,
            "tile-size" => on => Gemm.TileBytes = on ? Gemm.WidenedTileBytes : Gemm.L2TileBytes,
            "widen-rows" => on => (WidenInRegisters.MaxXRows, WidenInRegisters.MaxBF16XRows) = on
                ? (WidenInRegisters.WideXRows, WidenInRegisters.WideBF16XRows)
                : (WidenInRegisters.TileXRows, WidenInRegisters.TileXRows),
            "q8-packed-groups" => on => GemmQ8_0.PackFromGroups = on,
            "q8-interleaved-rows" => on => GemmQ8_0.MaxInterleavedRows = on ? GemmQ8_0.InterleavedRows : GemmQ8_0.MaxDirectRows,
            "q8-in-place" => on => inPlaceSide = on,
            "prefill-runs" => on => PrefillAttention.Enabled = on,
            "attention-256" => on => PagedAttention.Vector256Enabled = on,
            "prefetch-lead" => on => WidenInRegisters.ShortLeadForAliasedRows = on,
            _ => null!,
        };
        if (set is null || (part != "decode" && (sequences > 0) == (prompt > 0)) || steps < 4)
        {
            return Usage("give --switch prefetch|tiled|tiled-256|widen-256|values|scales|row-prefetch|grouped|f16-prefetch|int8|half-multiply|scale-lookup|shared-x|slices|steal|via-gemm|f16-via-gemm|bf16-via-gemm|q8-via-gemm|q8-fold-rows|q8-prefetch|q8-vnni|q8-interleaved|q8-interleaved-rows|q8-packed-groups|q8-in-place|widen-rows|tile-size|prefill-runs|attention-256|prefetch-lead and one of --sequences N or --prompt N, or --part decode (and --steps of at least 4)");
        }

        if (part == "gemm" && sequences == 0)
        {
            return Usage("--part gemm times one step's matrix products: give --sequences N (the X rows)");
        }

        if (part == "attention" && prompt == 0)
        {
            return Usage("--part attention times a prefill's attention: give --prompt N");
        }

        if (toggle == "q8-in-place" && (part is not (null or "step") || model is null))
        {
            return Usage("--switch q8-in-place compares two engine runners of a Q8_0 --model: give --sequences or --prompt");
        }

        // q8-in-place: two runners of the same file loaded twice, one with its Q8_0 rows rewritten in place
        // (CpuWeightLayout), the other with the runner's interleaved copy beside the file's layout
        using IDisposable fixture = part switch
        {
            "attention" => new PrefillAttentionFixture(prompt),
            "decode" => new DecodeFixture(model, DecodeTokens, threads),
            "gemm" => new GemmStepFixture(type, sequences),
            _ => Build(model, sequences, prompt, threads),
        };
        using var rewritten = toggle == "q8-in-place" ? Build(model, sequences, prompt, threads, inPlace: true) : null;
        Action execute = fixture switch
        {
            PrefillAttentionFixture attention => attention.Execute,
            DecodeFixture decode => decode.Execute,
            GemmStepFixture gemm => gemm.Execute,
            _ when rewritten is not null => () => (inPlaceSide ? rewritten : (CpuRunnerFixture)fixture).Execute(),
            _ => ((CpuRunnerFixture)fixture).Execute,
        };
        for (var i = 0; i < 12; i++)
        {
            set(i % 2 == 0);
            execute(); // warm-up of both sides, and time for the JIT's optimised tiers to arrive
        }

        var times = new[] { new List<double>(), new List<double>() }; // [0] off, [1] on
        for (var step = 0; step < steps; step++)
        {
            var on = ((step / 2) % 2 == 0) == (step % 2 == 0);
            set(on);
            var clock = Stopwatch.StartNew();
            execute();
            times[on ? 1 : 0].Add(clock.Elapsed.TotalMilliseconds);
        }

        set(true);
        var rows = part == "decode" ? DecodeTokens : prompt > 0 ? prompt : sequences;
        Console.WriteLine(part switch
        {
            "attention" => $"one layer's attention of a prefill of {prompt} tokens, 1 thread, {steps / 2} runs each, ABBA:",
            "gemm" => $"the matrix products of one 110m step ({type}, random weights) against {sequences} X rows, 1 thread, {steps / 2} runs each, ABBA:",
            "decode" => $"single-sequence decode of {DecodeTokens} tokens (CpuTransformer), {threads} threads, {Path.GetFileName(model) ?? "synthetic 110m F32"}, {steps / 2} runs each, ABBA:",
            _ => $"{(prompt > 0 ? $"prefill of {prompt} tokens" : $"decode step of {sequences} sequences")}, {threads} threads, {Path.GetFileName(model) ?? "synthetic 110m F32"}, {steps / 2} steps each, ABBA:",
        });
        var medians = new double[2];
        foreach (var side in new[] { 1, 0 })
        {
            var t = times[side];
            t.Sort();
            medians[side] = t[t.Count / 2];
            Console.WriteLine(
                $"  {toggle} {(side == 1 ? "on " : "off")}: median {medians[side]:F1} ms ({rows * 1000 / medians[side]:F0} tok/s), quartiles {t[t.Count / 4]:F1} / {t[t.Count * 3 / 4]:F1} ms");
        }

        Console.WriteLine($"  on / off time: {medians[1] / medians[0]:F3}");
        return 0;
    }

    /// <summary><see cref="GemmStepBenchmarks"/>'s step as a fixture: the same weights, X rows and product order.</summary>
    private sealed class GemmStepFixture : IDisposable
    {
        private readonly GemmStepBenchmarks _step = new();

        public GemmStepFixture(string type, int rows)
        {
            _step.Type = type;
            _step.Rows = rows;
            _step.Setup();
        }

        public void Execute() => _step.Step();

        public void Dispose() => _step.Cleanup();
    }

    private static CpuRunnerFixture Build(string? model, int sequences, int prompt, int threads, bool inPlace = false) => prompt > 0
        ? CpuRunnerFixture.PrefillStep(prompt, threads, model, inPlace)
        : CpuRunnerFixture.DecodeStep(sequences, Context, threads, model, inPlace);

    private static int Usage(string problem)
    {
        Console.Error.WriteLine($"step-ab: {problem}");
        Console.Error.WriteLine("usage: step-ab --switch prefetch|tiled|tiled-256|widen-256|values|scales|row-prefetch|grouped|f16-prefetch|int8|half-multiply|scale-lookup|shared-x|slices|steal|via-gemm|f16-via-gemm|bf16-via-gemm|q8-via-gemm|q8-fold-rows|q8-prefetch|q8-vnni|q8-interleaved|q8-interleaved-rows|q8-packed-groups|q8-in-place|widen-rows|tile-size|prefill-runs|attention-256|prefetch-lead (--sequences N | --prompt N | --part decode) [--part step|attention] [--model FILE] [--steps 60] [--threads 2]");
        return 2;
    }
}
