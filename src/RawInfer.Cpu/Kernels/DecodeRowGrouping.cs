using System.Runtime.Intrinsics.X86;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// How the single-sequence kernels walk a weight matrix: several rows in lockstep (one load of the input feeds
/// them; several streams of weights in flight) or one row at a time (one sequential stream). <see cref="FourRows"/>
/// covers <see cref="MatVecF32"/>, the 8-row tiles of the F32 GEMM and the F16/BF16 in-register path with one X row;
/// <see cref="FourRowsQ8_0"/> the Q8_0 kernel's scaled rows (<c>rawinfer generate</c>'s decode) and the Q8_0 GEMM's
/// direct path. Both ways give the same bits. Which is faster depends on the processor and is chosen once per
/// process. 110M model, 2 threads, ABBA medians (<c>perf/RawInfer.Benchmarks step-ab --switch grouped</c>): on the
/// 2-core Intel Xeon VM four rows took 0.89 of one row's time in Q8_0 decode (2026-12-03); on the 2-core AMD EPYC
/// VM of family 19h (Zen 4) lockstep took 1.64–1.78 times one row's time in Q8_0 decode and 1.59–1.69 in F32
/// (<c>--part decode</c>), and 1.21–1.48 (F32), 1.51–1.61 (F16) and 1.01 (Q8_0) in an engine step of one sequence
/// (<c>--sequences 1</c>; 2026-12-04): its prefetchers followed one stream per core far better than several. On the
/// 2-core EPYC VM of family 1Ah (Zen 5, 71 GB/s triad) lockstep took 0.70 (F32) and 0.78 (F16) of one row's time in
/// an engine step of one sequence, 0.89 in F32 <c>--part decode</c>, but 2.81 in Q8_0, whose eight-row direct
/// path gathers each block's scales across rows (2026-12-05). So: lockstep on Intel, one row on AMD before
/// family 1Ah, and on later AMD lockstep except for Q8_0. <c>RAWINFER_DECODE_ROWS=1</c> or <c>4</c> overrides both
/// choices.
/// </summary>
internal static class DecodeRowGrouping
{
    /// <summary>The environment variable that overrides the processor's choice: <c>1</c> or <c>4</c>.</summary>
    public const string Variable = "RAWINFER_DECODE_ROWS";

    /// <summary>The first AMD family (Zen 5) whose prefetchers keep several rows' streams going.</summary>
    internal const int AmdLockstepFamily = 0x1A;

    private static readonly ProcessorKind s_processor = Probe();

    /// <summary>The processors whose measurements set the defaults.</summary>
    internal enum ProcessorKind
    {
        /// <summary>Intel or any other vendor (and non-x86 machines).</summary>
        Other,

        /// <summary>AMD before family 1Ah (Zen 4 and earlier): one row at a time everywhere.</summary>
        AmdBeforeZen5,

        /// <summary>AMD of family 1Ah or later (Zen 5): lockstep for the float kernels, one row for Q8_0.</summary>
        AmdZen5OrLater,
    }

    /// <summary>This machine's kind, probed once; other kernels' per-processor choices read it too.</summary>
    internal static ProcessorKind Processor => s_processor;

    /// <summary>
    /// True: the float kernels (F32, F16, BF16) take several rows in lockstep. Settable for benchmarks and tests (same
    /// bits either way).
    /// </summary>
    internal static bool FourRows { get; set; } =
        Choose(Environment.GetEnvironmentVariable(Variable), s_processor, quantized: false);

    /// <summary>True: the Q8_0 kernels take several rows in lockstep. Settable for benchmarks and tests.</summary>
    internal static bool FourRowsQ8_0 { get; set; } =
        Choose(Environment.GetEnvironmentVariable(Variable), s_processor, quantized: true);

    /// <summary>
    /// The choice for an override value (null or empty: none), a processor and the kind of kernel.
    /// </summary>
    /// <exception cref="ArgumentException">The override is neither 1 nor 4.</exception>
    internal static bool Choose(string? overrideValue, ProcessorKind processor, bool quantized) => overrideValue switch
    {
        null or "" => processor switch
        {
            ProcessorKind.AmdBeforeZen5 => false,
            ProcessorKind.AmdZen5OrLater => !quantized,
            _ => true,
        },
        "4" => true,
        "1" => false,
        _ => throw new ArgumentException($"{Variable} must be 1 or 4, not '{overrideValue}'"),
    };

    /// <summary>The kind of this machine's processor, from CPUID.</summary>
    internal static ProcessorKind Probe() =>
        !VendorIsAmd() ? ProcessorKind.Other
        : Family() >= AmdLockstepFamily ? ProcessorKind.AmdZen5OrLater
        : ProcessorKind.AmdBeforeZen5;

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

    /// <summary>
    /// The processor family as <c>/proc/cpuinfo</c>'s "cpu family" gives it: CPUID leaf 1's base family (EAX bits
    /// 8–11), plus its extended family (bits 20–27) where the base is 0Fh; 0 off x86.
    /// </summary>
    internal static int Family()
    {
        if (!X86Base.IsSupported)
        {
            return 0;
        }

        var eax = X86Base.CpuId(1, 0).Eax;
        var family = (eax >> 8) & 0xF;
        return family == 0xF ? family + ((eax >> 20) & 0xFF) : family;
    }
}
