using System.Globalization;
using RawInfer.GpuBench;
using RawInfer.Gpu.Kernels;
using RawInfer.Native;

// rawinfer-gpubench COMMAND [key=value ...]; each command prints one JSON line on stdout.
//   write-model path=M.gguf [shape=1b] [dtype=f16] [seed=1]   synthetic GGUF model (written on the device machine)
//   bandwidth [mib=1024] [iterations=20]                         device-to-device copy bandwidth
//   decode model=M.gguf [batch=1] [context=128] [steps=64] [graphs=1] [min_split=256]
//                                                                CUDA runner decode tok/s and % of the HBM roofline
//   attention [batch=1] [context=2048] [iterations=50] [min_split=256]
//                                                                paged-attention decode kernel bandwidth (1B shape)
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: rawinfer-gpubench write-model|bandwidth|decode|attention [key=value ...]");
    return 2;
}

var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
foreach (var arg in args.Skip(1))
{
    var eq = arg.IndexOf('=', StringComparison.Ordinal);
    if (eq <= 0)
    {
        Console.Error.WriteLine($"expected key=value, not '{arg}'");
        return 2;
    }

    options[arg[..eq]] = arg[(eq + 1)..];
}

int Int(string key, int fallback) => options.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
string Text(string key, string? fallback = null) =>
    options.TryGetValue(key, out var v) ? v : fallback ?? throw new ArgumentException($"{key}= is required");

try
{
    var json = args[0] switch
    {
        "write-model" => Benchmarks.WriteModel(Text("path"), Text("shape", "1b"), Text("dtype", "f16"), Int("seed", 1)),
        "bandwidth" => Benchmarks.Bandwidth(Int("mib", 1024), Int("iterations", 20)),
        "decode" => Benchmarks.Decode(Text("model"), Int("batch", 1), Int("context", 128), Int("steps", 64), Int("graphs", 1) != 0,
            Int("min_split", PagedAttentionPlan.MinTokensPerSplit)),
        "attention" => Benchmarks.Attention(Int("batch", 1), Int("context", 2048), Int("iterations", 50),
            Int("min_split", PagedAttentionPlan.MinTokensPerSplit)),
        _ => throw new ArgumentException($"unknown command {args[0]}"),
    };
    Console.WriteLine(json);
    return 0;
}
catch (Exception e) when (e is ArgumentException or FormatException or IOException or InvalidOperationException or CudaException)
{
    Console.Error.WriteLine($"rawinfer-gpubench: {e.Message}");
    return 1;
}
