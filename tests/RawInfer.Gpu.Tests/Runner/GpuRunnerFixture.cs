using RawInfer.Gpu.Device;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Tests;
using Xunit;

namespace RawInfer.Gpu.Tests.Runner;

/// <summary>
/// Shared by the device tests: whether a CUDA device is present, and model files written once per run into a
/// temporary folder (stories260K re-encoded as F16 GGUF so both backends compute from the same 16-bit weights; a
/// synthetic model with the 1B's layer shapes in F16).
/// </summary>
public sealed class GpuRunnerFixture : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"rawinfer-gpu-runner-{Environment.ProcessId}");
    private readonly Lazy<string> _stories16;
    private readonly Lazy<string> _synthetic1b;

    public GpuRunnerFixture()
    {
        var probe = CudaDeviceSelector.ProbeDriver();
        DeviceProblem = probe.DeviceCount > 0 ? null : probe.Problem ?? "no CUDA device";
        _stories16 = new Lazy<string>(() =>
        {
            Directory.CreateDirectory(_directory);
            var path = Path.Combine(_directory, "stories260K-f16.gguf");
            Llama2cToGguf.Convert(TestPaths.Model("stories260K.bin"), TestPaths.Model("tok512.bin"), path, TensorType.F16);
            return path;
        });
        _synthetic1b = new Lazy<string>(() =>
        {
            Directory.CreateDirectory(_directory);
            var path = Path.Combine(_directory, "synthetic-1b-shaped-f16.gguf");
            GgufModelWriter.WriteSynthetic(path, Synthetic1bConfig, seed: 1234, TensorType.F16);
            return path;
        });
    }

    /// <summary>
    /// TinyLlama 1.1B's widths (dim 2048, hidden 5632, 32 heads, 4 KV heads, vocab 32,000) with 2 layers, so the
    /// CPU reference stays quick; RAWINFER_GPU_TEST_LAYERS overrides the layer count (22 = the whole model).
    /// </summary>
    public static ModelConfig Synthetic1bConfig
    {
        get
        {
            var layers = int.TryParse(Environment.GetEnvironmentVariable("RAWINFER_GPU_TEST_LAYERS"), out var n) && n > 0 ? n : 2;
            return ModelShapes.Parse("1b") with { NumLayers = layers, MaxSeqLen = 512 };
        }
    }

    /// <summary>Why the device tests skip; null when a device is present.</summary>
    public string? DeviceProblem { get; }

    public string Stories16Path => _stories16.Value;

    public string Synthetic1bPath => _synthetic1b.Value;

    /// <summary>Skips the calling test when there is no CUDA device.</summary>
    public void RequireDevice()
    {
        if (DeviceProblem is not null)
        {
            Assert.Skip($"needs a CUDA device: {DeviceProblem}");
        }
    }

    public void Dispose()
    {
        try
        {
            if (Directory.Exists(_directory))
            {
                Directory.Delete(_directory, recursive: true);
            }
        }
        catch (IOException)
        {
            // a temp folder left behind is harmless
        }
    }
}
