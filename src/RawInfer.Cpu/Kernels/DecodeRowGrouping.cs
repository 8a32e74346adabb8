using System.Runtime.Intrinsics.X86;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// How the single-sequence kernels walk a weight matrix: several rows in lockstep (one load of the input feeds
/// them; several streams of weights in flight) or one row at a time (one sequential stream). It covers
/// <see cref="MatVecF32"/> and the Q8_0 kernel's scaled rows (four rows; <c>rawinfer generate</c>'s decode) and
/// the engine's one-sequence steps, the 8-row tiles of the F32 GEMM and of the F16/BF16/Q8_0 in-register path
/// with one X row. Both ways give the same bits. Which is faster depends on the processor and is chosen once per
/// process: lockstep on Intel, one row on AMD, where the hardware prefetchers follow one stream per core far
/// better than several. 110M model, 2 threads, ABBA medians (<c>perf/RawInfer.Benchmarks step-ab --switch
/// grouped</c>): on the 2-core Intel Xeon VM four rows took 0.89 of one row's time in Q8_0 decode (2026-12-03); on
/// the 2-core AMD EPYC (Zen 4) VM lockstep took 1.64–1.78 times one row's time in Q8_0 decode and 1.59–1.69 in F32
/// (<c>--part decode</c>), and 1.21–1.48 (F32), 1.51–1.61 (F16) and 1.01 (Q8_0, whose widening is the limit there)
/// in an engine step of one sequence (<c>--sequences 1</c>; 2026-12-04). <c>RAWINFER_DECODE_ROWS=1</c> or <c>4</c>
/// overrides the choice.
/// </summary>
internal static class DecodeRowGrouping
{
    /// <summary>The environment variable that overrides the vendor choice: <c>1</c> or <c>4</c>.</summary>
    public const string Variable = "RAWINFER_DECODE_ROWS";

    /// <summary>True: several rows in lockstep. Settable for benchmarks and tests (same bits either way).</summary>
    internal static bool FourRows { get; set; } = Choose(Environment.GetEnvironmentVariable(Variable), VendorIsAmd());

    /// <summary>The choice for an override value (null or empty: none) and a vendor.</summary>
    /// <exception cref="ArgumentException">The override is neither 1 nor 4.</exception>
    internal static bool Choose(string? overrideValue, bool amd) => overrideValue switch
    {
        null or "" => !amd,
        "4" => true,
        "1" => false,
        _ => throw new ArgumentException($"{Variable} must be 1 or 4, not '{overrideValue}'"),
    };

    /// <summary>True when CPUID leaf 0 names the vendor "AuthenticAMD" (false off x86 or for any other vendor).</summary>
    internal static bool VendorIsAmd()
    {
        if (!X86Base.IsSupported)
        {
            return false;
        }

        // vendor string: EBX, EDX, ECX of leaf 0, four little-endian characters each
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        return ebx == 0x68747541 && edx == 0x69746E65 && ecx == 0x444D4163; // "Auth" "enti" "cAMD"
    }
}
