namespace RawInfer.Cpu.Tests;

/// <summary>
/// The test classes that flip a process-wide kernel switch (<c>ShareTails.Enabled</c>, <c>DecodeRowGrouping.FourRows</c>,
/// <c>MatVecQ8_0.UseDecodedScales</c>, ...) and those that count a step's allocations. A switch changes which path
/// a product takes, never its bits, so the other tests may run beside a flip; but a path first taken after the
/// warm-up can allocate once (a buffer sized on first use) inside a counting window. A CI run failed that way
/// (152 bytes: stealing switched back on mid-window grew a cursor array), so these classes never overlap.
/// </summary>
[CollectionDefinition(Name)]
public sealed class KernelSwitches
{
    public const string Name = nameof(KernelSwitches);
}
