using System.Diagnostics;
using RawInfer.Gpu.Runner;
using RawInfer.Native;

namespace RawInfer.Gpu.Kernels;

/// <summary>
/// The kernels/*.cu modules loaded on one context, with one typed launch method per kernel. Launches queue on the
/// given stream and allocate nothing (one reusable argument block), so an instance is used from one thread at a
/// time, as the runner's single stream is. Pointers are device addresses (a buffer's Pointer plus a byte offset).
/// Shapes are validated once with <see cref="ValidateAttentionShape"/>; launches only assert them.
/// </summary>
public sealed partial class CudaKernels : IDisposable
{
    /// <summary>Threads per block of the element-wise kernels.</summary>
    private const int ElementwiseThreads = 256;

    /// <summary>Threads per block of the argmax and sampling kernels (SAMPLE_THREADS in sampling_select.cuh).</summary>
    private const int SamplingThreads = 1024;

    /// <summary>Every extern "C" entry point, by the file that defines it.</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> EntryPoints = new Dictionary<string, IReadOnlyList<string>>
    {
        ["embedding.cu"] = ["embedding_gather_f16", "embedding_gather_bf16"],
        ["rmsnorm.cu"] = ["rmsnorm_f16", "rmsnorm_bf16"],
        ["rope.cu"] = ["rope_f32"],
        ["kv_write.cu"] = ["kv_write_f16", "kv_write_bf16"],
        ["paged_attention.cu"] =
        [
            "paged_attention_decode_f16", "paged_attention_decode_bf16",
            "paged_attention_merge_f16", "paged_attention_merge_bf16",
            "paged_attention_prefill_f16", "paged_attention_prefill_bf16",
        ],
        ["swiglu.cu"] = ["swiglu_f16", "swiglu_bf16"],
        ["residual.cu"] = ["residual_add_f32", "convert_f32_to_f16", "convert_f32_to_bf16"],
        ["sampling.cu"] = ["argmax_f32", "sample_top_k_top_p_f32"],
    };

    private readonly CudaModule[] _modules;
    private readonly Dictionary<string, CudaFunction> _functions = new(StringComparer.Ordinal);
    private readonly CudaFunction[] _embedding; // indexed by GpuElementType
    private readonly CudaFunction[] _rmsNorm;
    private readonly CudaFunction _rope;
    private readonly CudaFunction[] _kvWrite;
    private readonly CudaFunction[] _decode;
    private readonly CudaFunction[] _merge;
    private readonly CudaFunction[] _prefill;
    private readonly CudaFunction[] _swiGlu;
    private readonly CudaFunction _residualAdd;
    private readonly CudaFunction[] _convert;
    private readonly CudaFunction _argMax;
    private readonly CudaFunction _sample;
    private KernelArguments _args;

    private CudaKernels(CudaContext context, Func<string, KernelImage> images)
    {
        var modules = new List<CudaModule>();
        try
        {
            foreach (var (file, names) in EntryPoints)
            {
                var image = images(file);
                var module = CudaModule.LoadData(context, image.Data.Span);
                modules.Add(module);
                foreach (var name in names)
                {
                    _functions[name] = module.GetFunction(name);
                }
            }
        }
        catch
        {
            foreach (var module in modules)
            {
                module.Dispose();
            }

            throw;
        }

        _modules = [.. modules];
        _embedding = Pair("embedding_gather");
        _rmsNorm = Pair("rmsnorm");
        _rope = _functions["rope_f32"];
        _kvWrite = Pair("kv_write");
        _decode = Pair("paged_attention_decode");
        _merge = Pair("paged_attention_merge");
        _prefill = Pair("paged_attention_prefill");
        _swiGlu = Pair("swiglu");
        _residualAdd = _functions["residual_add_f32"];
        _convert = Pair("convert_f32_to");
        _argMax = _functions["argmax_f32"];
        _sample = _functions["sample_top_k_top_p_f32"];
    }

    /// <summary>
    /// Compiles (or takes from the cache) every kernel for the context's device and loads them: a cubin for the
    /// device's own architecture, so the driver's PTX version never matters.
    /// </summary>
    public static CudaKernels Create(CudaContext context, string? cacheDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (major, minor) = context.Device.ComputeCapability;
        var compiler = new KernelCompiler(KernelCompiler.ArchitectureFor(major, minor), cacheDirectory);
        return new CudaKernels(context, compiler.Compile);
    }

    /// <summary>Loads modules from <paramref name="compiler"/> (its architecture must suit the device).</summary>
    public static CudaKernels Create(CudaContext context, KernelCompiler compiler)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(compiler);
        return new CudaKernels(context, compiler.Compile);
    }

    /// <summary>
    /// Loads ahead-of-time images written by <see cref="KernelCompiler.CompileAll(string, string)"/>: the cubin for
    /// <paramref name="architecture"/> when present, else "compute_XX" PTX of the same number.
    /// </summary>
    /// <exception cref="FileNotFoundException">A kernel file has no image in <paramref name="directory"/>.</exception>
    public static CudaKernels LoadPrecompiled(CudaContext context, string directory, string architecture)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(architecture);
        var ptxArchitecture = "compute_" + architecture[(architecture.IndexOf('_', StringComparison.Ordinal) + 1)..];
        return new CudaKernels(context, file =>
        {
            var cubin = Path.Combine(directory, KernelImage.ArtifactName(file, architecture));
            if (KernelCompiler.IsCubinArchitecture(architecture) && File.Exists(cubin))
            {
                return new KernelImage(file, architecture, KernelImageKind.Cubin, File.ReadAllBytes(cubin));
            }

            var ptx = Path.Combine(directory, KernelImage.ArtifactName(file, ptxArchitecture));
            return File.Exists(ptx)
                ? new KernelImage(file, ptxArchitecture, KernelImageKind.Ptx, File.ReadAllBytes(ptx))
                : throw new FileNotFoundException($"no precompiled image of {file} for {architecture} in {directory}", cubin);
        });
    }

    /// <summary>Looks up any entry point by name (for diagnostics and benchmarks).</summary>
    public CudaFunction Function(string name) => _functions[name];

    /// <summary>
    /// Throws a specific <see cref="ArgumentException"/> when the attention kernels cannot serve the shape: heads a
    /// positive multiple of kvHeads, headDim even and at most <see cref="PagedAttentionPlan.MaxHeadDim"/>.
    /// </summary>
    public static void ValidateAttentionShape(int heads, int kvHeads, int headDim)
    {
        if (kvHeads <= 0 || heads <= 0 || heads % kvHeads != 0)
        {
            throw new ArgumentException($"heads ({heads}) must be a positive multiple of kvHeads ({kvHeads})", nameof(heads));
        }

        if (headDim <= 0 || headDim % 2 != 0 || headDim > PagedAttentionPlan.MaxHeadDim)
        {
            throw new ArgumentException(
                $"headDim ({headDim}) must be even and at most {PagedAttentionPlan.MaxHeadDim} for the CUDA attention kernels",
                nameof(headDim));
        }
    }

    /// <summary>Unloads the modules.</summary>
    public void Dispose()
    {
        foreach (var module in _modules)
        {
            module.Dispose();
        }
    }

    private CudaFunction[] Pair(string stem) => [_functions[stem + "_f16"], _functions[stem + "_bf16"]];

    private static int Blocks(long count, int threads)
    {
        Debug.Assert(count > 0);
        return (int)Math.Min((count + threads - 1) / threads, int.MaxValue);
    }

    private static int Index(GpuElementType type)
    {
        Debug.Assert(type is GpuElementType.F16 or GpuElementType.BF16);
        return type == GpuElementType.BF16 ? 1 : 0;
    }
}
