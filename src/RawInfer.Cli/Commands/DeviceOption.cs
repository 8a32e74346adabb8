using System.CommandLine;
using RawInfer.Cpu;
using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.Engine.Runner;
using RawInfer.Gpu.Device;
using RawInfer.Gpu.Runner;
using RawInfer.KvCache;
using RawInfer.Models;
using RawInfer.Native;

namespace RawInfer.Cli.Commands;

/// <summary>The <c>--device cpu|cuda|auto</c> option shared by the commands that run a model.</summary>
internal static class DeviceOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--device")
        {
            Description = "Backend: cpu, cuda (an error without a CUDA device) or auto (cuda when a driver and a device are present, else cpu).",
            DefaultValueFactory = _ => "auto",
        };
        option.AcceptOnlyFromAmong([.. DeviceChoices.Names]);
        return option;
    }

    public static DeviceChoice Parse(string? text) =>
        DeviceChoices.TryParse(text, out var choice) ? choice : throw new CliException($"unknown --device {text}: use cpu, cuda or auto");
}

/// <summary>The <c>--kv-dtype f32|f16|bf16</c> option of the commands that run the engine.</summary>
internal static class KvDtypeOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--kv-dtype")
        {
            Description = "Element type of the CPU backend's KV cache: f32, f16 or bf16 (both half the memory per token, so twice the tokens in the same budget; K/V rounded as stored). The CUDA backend keeps K/V in its compute type.",
            DefaultValueFactory = _ => "f32",
        };
        option.AcceptOnlyFromAmong("f32", "f16", "bf16");
        return option;
    }

    public static KvCacheType Parse(string? text) =>
        KvCacheTypes.TryParse(text, out var type) ? type : throw new CliException($"unknown --kv-dtype {text}: use f32, f16 or bf16");
}

/// <summary>
/// Builds the model runner a <see cref="DeviceChoice"/> asks for. The only place besides test hosts that names
/// both backends. <c>auto</c> falls back to the CPU (with one notice line) when there is no CUDA device or the
/// CUDA runner cannot start; <c>cuda</c> turns either into a <see cref="CliException"/> (one line, exit code 1).
/// </summary>
internal static class ModelRunnerFactory
{
    /// <summary>Set to 0 to queue every CUDA decode step launch by launch instead of replaying captured graphs.</summary>
    public const string CudaGraphsVariable = "RAWINFER_CUDA_GRAPHS";

    /// <summary>A runner for the engine's default limits.</summary>
    public static IModelRunner Create(LoadedModel model, DeviceChoice device, int threads, out string? notice) =>
        Create(model, device, threads, new EngineOptions(), out notice);

    /// <summary>
    /// A runner for an engine with <paramref name="limits"/> (a CUDA runner sizes its activation buffers from
    /// MaxBatchedTokens and MaxRunningSequences before the KV cache is planned).
    /// </summary>
    /// <param name="notice">One line for stderr when auto fell back to the CPU; null otherwise.</param>
    /// <exception cref="CliException">cuda was asked for and cannot run.</exception>
    /// <param name="kvCacheType">The CPU runner's KV cache element type (the CUDA runner keeps its compute type).</param>
    public static IModelRunner Create(
        LoadedModel model, DeviceChoice device, int threads, EngineOptions limits, out string? notice, KvCacheType kvCacheType = KvCacheType.F32) =>
        (IModelRunner?)TryCreateCuda(model, device, limits, out notice) ?? new CpuModelRunner(PrepareForCpu(model), threads, kvCacheType);

    /// <summary>
    /// Set to 0 to keep the weights as the file has them: Q8_0 in the file's layout (with the CPU runner's interleaved
    /// copy beside them where it fits), F16 halves unscaled.
    /// </summary>
    public const string CpuLayoutVariable = "RAWINFER_CPU_LAYOUT";

    /// <summary>
    /// The model about to run on the CPU, its Q8_0 product matrices rewritten in place into the CPU backend's layout
    /// and its F16 ones' halves scaled where they can be (<see cref="CpuWeightLayout.TryRewriteInPlace"/>): no second
    /// copy of them in memory. Where they cannot (no AVX-VNNI or AVX-512, a read-only mapping of a large file), Q8_0
    /// weights get the runner's copy where it fits, F16 ones the exact conversion, as before.
    /// </summary>
    public static LoadedModel PrepareForCpu(LoadedModel model)
    {
        if (Environment.GetEnvironmentVariable(CpuLayoutVariable) != "0")
        {
            _ = CpuWeightLayout.TryRewriteInPlace(model, out _);
        }

        return model;
    }

    /// <summary>
    /// The CUDA runner when <paramref name="device"/> selects one and it starts; null when the CPU should run the
    /// model (cpu, or auto without a usable device: <paramref name="notice"/> then says why).
    /// </summary>
    /// <exception cref="CliException">cuda was asked for and cannot run.</exception>
    public static CudaModelRunner? TryCreateCuda(LoadedModel model, DeviceChoice device, EngineOptions limits, out string? notice)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(limits);
        DeviceSelection selection;
        try
        {
            selection = CudaDeviceSelector.Select(device);
        }
        catch (CudaUnavailableException e)
        {
            throw new CliException(e.Message, e);
        }

        notice = selection.Notice;
        if (!selection.UseCuda)
        {
            return null;
        }

        try
        {
            return new CudaModelRunner(model, new CudaRunnerOptions
            {
                DeviceOrdinal = selection.Ordinal,
                MaxBatchedTokens = limits.MaxBatchedTokens,
                MaxSequences = limits.MaxRunningSequences,
                DecodeGraphs = Environment.GetEnvironmentVariable(CudaGraphsVariable) != "0",
            });
        }
        catch (Exception e) when (e is CudaException or NvrtcException or CublasException or InvalidOperationException or DllNotFoundException)
        {
            var reason = e.Message.ReplaceLineEndings(" ");
            if (device == DeviceChoice.Cuda)
            {
                throw new CliException($"--device cuda: {reason}", e);
            }

            notice = $"the CUDA backend could not start ({reason}): using the CPU backend";
            return null;
        }
    }

    /// <summary>
    /// The engine options to use with <paramref name="runner"/>: for a CUDA runner without a fixed KV budget,
    /// NumKvBlocks is planned from the device memory left after weights and activations (so the block manager
    /// counts the blocks the device really holds); otherwise the options unchanged.
    /// </summary>
    /// <param name="budgetGiven">True when the user fixed the KV budget (e.g. --kv-mib): it is honoured as is.</param>
    /// <exception cref="CliException">The device has no memory left for a single block.</exception>
    public static EngineOptions WithKvCache(IModelRunner runner, EngineOptions options, bool budgetGiven = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (runner is not CudaModelRunner cuda || options.NumKvBlocks > 0 || budgetGiven)
        {
            return options;
        }

        var blocks = cuda.PlanKvBlocks(options.BlockSize);
        return blocks > 0
            ? options with { NumKvBlocks = blocks }
            : throw new CliException($"{cuda.Device.Name}: no device memory left for a KV block after {cuda.WeightBytes >> 20} MiB of weights and {cuda.ActivationBytes >> 20} MiB of activations");
    }

    /// <summary>A short description of the backend for summaries ("cpu, 8 threads" or "cuda NVIDIA H100 …, f16").</summary>
    public static string Describe(IModelRunner runner) => runner switch
    {
        CudaModelRunner cuda => $"cuda {cuda.Device.Name}, {cuda.ElementType.KernelSuffix()}",
        CpuModelRunner cpu => $"cpu, {cpu.Threads} threads, kv {cpu.KvCacheType.Name()}",
        _ => runner.GetType().Name,
    };
}
