using System.Reflection;

namespace RawInfer.Cli.Tests;

/// <summary>The wire codec knows nothing of the engine; the client knows only the codec; only the server meets both.</summary>
public class ProtocolArchitectureTests
{
    [Theory]
    [InlineData("RawInfer.Protocol", new string[0])]
    [InlineData("RawInfer.Client", new[] { "RawInfer.Protocol" })]
    [InlineData("RawInfer.Server", new[] { "RawInfer.Protocol", "RawInfer.Engine", "RawInfer.Safety", "RawInfer.Tokenizers" })]
    public void Protocol_layers_reference_only_what_lies_below_them(string assemblyName, string[] allowed)
    {
        var ours = Assembly.Load(assemblyName).GetReferencedAssemblies()
            .Select(a => a.Name!)
            .Where(n => n.StartsWith("RawInfer.", StringComparison.Ordinal))
            .ToHashSet();
        Assert.Subset(allowed.ToHashSet(), ours);
    }
}
