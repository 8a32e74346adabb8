using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests.Gguf;

/// <summary>stories260K with the tok512 vocabulary converted to a GGUF file in the temp folder, deleted on
/// dispose (a model loaded from it keeps its mapping on Linux).</summary>
internal sealed class ConvertedStories260K : IDisposable
{
    public ConvertedStories260K(TensorType dtype = TensorType.F32) =>
        Llama2cToGguf.Convert(TestPaths.Model("stories260K.bin"), TestPaths.Model("tok512.bin"), Path, dtype);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"rawinfer-{Guid.NewGuid():N}.gguf");

    public void Dispose() => File.Delete(Path);
}
