using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RawInfer.Cpu.Tests;

/// <summary>
/// CI runs this suite a second time with the JIT's AVX-512 switched off, so that the kernels' AVX2 paths are tested on
/// an AVX-512 machine, and sets <c>RAWINFER_EXPECT_NO_AVX512=1</c> there. A runtime that ignores the switch (.NET 10
/// ignores DOTNET_EnableAVX512F, which earlier runtimes read) would run the AVX-512 paths twice and report the AVX2
/// ones as tested: this test fails instead.
/// </summary>
public sealed class InstructionSetTests
{
    [Fact]
    public void A_run_that_expects_no_AVX_512_gets_none()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("RAWINFER_EXPECT_NO_AVX512") == "1", "only in the pass that switches AVX-512 off");
        Assert.False(Vector512.IsHardwareAccelerated, "the runtime still reports 512-bit vectors: the AVX-512 switch did not take");
        Assert.False(Avx512F.IsSupported, "the runtime still reports AVX-512F");
    }
}
