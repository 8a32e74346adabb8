using System.Reflection;

namespace RawInfer.Cli.Tests;

/// <summary>
/// Dependencies point one way: file formats, tokenizers and the KV cache depend on nothing of ours; the engine knows
/// no backend, socket or GPU library; backends know no CLI. Checked on the compiled assemblies' references, so a
/// project reference added by mistake fails here.
/// </summary>
public class ArchitectureTests
{
    private static readonly string[] Forbidden = ["System.Net.Sockets", "System.Net.Http", "ILGPU", "RawInfer.Native"];

    [Theory]
    [InlineData("RawInfer.Models", new string[0])]
    [InlineData("RawInfer.Tokenizers", new string[0])]
    [InlineData("RawInfer.KvCache", new string[0])]
    [InlineData("RawInfer.Engine", new[] { "RawInfer.KvCache", "RawInfer.Models", "RawInfer.Tokenizers" })]
    [InlineData("RawInfer.Cpu", new[] { "RawInfer.Engine", "RawInfer.KvCache", "RawInfer.Models" })]
    [InlineData("RawInfer.Native", new string[0])]
    public void Assembly_references_only_what_lies_below_it(string assemblyName, string[] allowed)
    {
        var assembly = Assembly.Load(assemblyName);
        var ours = assembly.GetReferencedAssemblies()
            .Select(a => a.Name!)
            .Where(n => n.StartsWith("RawInfer.", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToArray();
        Assert.Subset(allowed.ToHashSet(), ours.ToHashSet());

        var forbidden = assembly.GetReferencedAssemblies().Select(a => a.Name!).Intersect(Forbidden).ToArray();
        Assert.Empty(forbidden);
    }

    [Fact]
    public void The_engine_does_not_know_the_cpu_backend()
    {
        var engine = Assembly.Load("RawInfer.Engine");
        Assert.DoesNotContain(engine.GetReferencedAssemblies(), a => a.Name == "RawInfer.Cpu");
    }

    [Fact]
    public void The_gpu_backend_sits_beside_the_cpu_backend_and_knows_no_sockets()
    {
        var gpu = Assembly.Load("RawInfer.Gpu");
        var references = gpu.GetReferencedAssemblies().Select(a => a.Name!).ToHashSet();
        string[] allowed = ["RawInfer.Native", "RawInfer.Engine", "RawInfer.KvCache", "RawInfer.Models"];
        Assert.Subset(allowed.ToHashSet(), references.Where(n => n.StartsWith("RawInfer.", StringComparison.Ordinal)).ToHashSet());
        Assert.Contains("RawInfer.Native", references);
        Assert.DoesNotContain("System.Net.Sockets", references);
        Assert.DoesNotContain("RawInfer.Cpu", references);

        // The native layer is the one place CUDA is bound: nothing below the backends references it.
        foreach (var name in new[] { "RawInfer.Engine", "RawInfer.KvCache", "RawInfer.Models", "RawInfer.Cpu" })
        {
            Assert.DoesNotContain(Assembly.Load(name).GetReferencedAssemblies(), a => a.Name == "RawInfer.Native");
        }
    }
}
