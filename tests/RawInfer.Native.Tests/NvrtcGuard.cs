namespace RawInfer.Native.Tests;

/// <summary>
/// NVRTC tests skip when NVRTC is missing, except where RAWINFER_REQUIRE_NVRTC=1 (CI installs it): there a
/// missing NVRTC fails them, so a broken install cannot pass as "skipped".
/// </summary>
internal static class NvrtcGuard
{
    public static void Require()
    {
        if (Nvrtc.TryLoad(out var reason))
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("RAWINFER_REQUIRE_NVRTC") == "1")
        {
            Assert.Fail($"RAWINFER_REQUIRE_NVRTC=1 but {reason}");
        }

        Assert.Skip(reason);
    }
}
