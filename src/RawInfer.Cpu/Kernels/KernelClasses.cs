using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// Runs the static initialisers of every kernel class (the switches and tables under <c>RawInfer.Cpu.Kernels</c> and
/// the runner's) once, before any kernel runs. A method compiled while a class it reads a static of is still
/// uninitialised carries a call to the runtime's class-initialisation helper, and a call is enough for the JIT's
/// register allocator to keep vector accumulators in stack slots through the whole loop: compiled fully optimised
/// at first call (<c>TieredCompilationQuickJitForLoops=false</c>, as <c>rawinfer</c> runs), the F16 decode row
/// kernel went through memory for its four accumulators and decoded at 79–92 tok/s against 107–122 once it was
/// recompiled at tier 1 (2-core EPYC VM, 2026-12-04, <c>rawinfer generate</c> of 400 tokens, 110m F16). This runs
/// when the assembly is first used (a module initialiser), so every host gets it, benchmarks that call kernels
/// directly included; <see cref="CpuTransformer"/> and <see cref="Runner.CpuModelRunner"/> also ask for it.
/// </summary>
internal static class KernelClasses
{
    private static readonly Lazy<bool> s_initialized = new(Initialize);

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "the kernels' speed depends on their classes being initialised before the JIT first compiles them")]
    internal static void OnModuleLoad() => EnsureInitialized();

    /// <summary>Initialises them on the first call; later calls return at once.</summary>
    public static void EnsureInitialized() => _ = s_initialized.Value;

    private static bool Initialize()
    {
        foreach (var type in typeof(KernelClasses).Assembly.GetTypes())
        {
            if (!type.IsGenericTypeDefinition && type.Namespace is { } ns
                && (ns.StartsWith("RawInfer.Cpu.Kernels", StringComparison.Ordinal) || ns == "RawInfer.Cpu.Runner"))
            {
                RuntimeHelpers.RunClassConstructor(type.TypeHandle);
            }
        }

        return true;
    }
}
