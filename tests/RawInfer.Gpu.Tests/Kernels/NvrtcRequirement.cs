using RawInfer.Native;
using Xunit;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>
/// NVRTC gate of the contract: a test that needs NVRTC skips when it is missing, unless RAWINFER_REQUIRE_NVRTC=1
/// (CI), where a missing NVRTC fails it.
/// </summary>
internal static class NvrtcRequirement
{
    public const string Variable = "RAWINFER_REQUIRE_NVRTC";

    public static void Ensure()
    {
        if (Nvrtc.TryLoad(out var reason))
        {
            return;
        }

        if (Environment.GetEnvironmentVariable(Variable) == "1")
        {
            Assert.Fail($"{Variable}=1 but NVRTC cannot be loaded: {reason}");
        }

        Assert.Skip($"NVRTC is not installed ({reason}); set {Variable}=1 to make this a failure");
    }
}
