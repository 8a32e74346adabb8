namespace RawInfer.Gpu;

/// <summary>Marker for the GPU backend assembly.</summary>
internal static class GpuBackend
{
}
