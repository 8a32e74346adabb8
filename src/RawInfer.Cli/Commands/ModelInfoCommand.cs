using System.CommandLine;
using System.Globalization;

namespace RawInfer.Cli.Commands;

/// <summary><c>rawinfer model info FILE</c>: shape, parameter count and memory traffic per decoded token.</summary>
internal static class ModelInfoCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var file = new Argument<string>("file") { Description = "Model file (llama2.c checkpoint or GGUF)." };
        var command = new Command("info", "Show a model file's shape, parameter count and bytes read per token.");
        command.Arguments.Add(file);
        command.SetAction((parse, _) => CliApp.Guard(error, () =>
        {
            Run(parse.GetValue(file)!, output);
            return Task.FromResult(0);
        }));
        return command;
    }

    private static void Run(string path, TextWriter output)
    {
        using var model = ModelFiles.Load(path);
        var c = model.Config;
        var inv = CultureInfo.InvariantCulture;
        long weightsPerToken = ModelFiles.WeightBytesPerToken(model.Weights);
        long kvPerToken = c.KvBytesPerToken();
        output.WriteLine($"file:        {model.Path}");
        output.WriteLine($"format:      {model.Format}");
        output.WriteLine($"shape:       {ModelFiles.ShapeText(c)}");
        output.WriteLine(string.Create(inv,
            $"             dim {c.Dim}, hidden {c.HiddenDim}, {c.NumLayers} layers, {c.NumHeads} heads of {c.HeadDim}, {c.NumKvHeads} KV heads, vocab {c.VocabSize}, seq_len {c.MaxSeqLen}, classifier {(c.SharedClassifier ? "shared" : "separate")}"));
        output.WriteLine(string.Create(inv, $"parameters:  {c.ParameterCount:N0}"));
        output.WriteLine(string.Create(inv, $"weights:     {ModelFiles.WeightBytes(model.Weights, c):N0} bytes ({model.Weights.Classifier.Type})"));
        output.WriteLine(string.Create(inv, $"per token:   {weightsPerToken:N0} weight bytes read, {kvPerToken:N0} KV-cache bytes written (f32)"));
        output.WriteLine(string.Create(inv,
            $"KV cache:    {kvPerToken * c.MaxSeqLen:N0} bytes for the full {c.MaxSeqLen}-token context"));
    }
}
