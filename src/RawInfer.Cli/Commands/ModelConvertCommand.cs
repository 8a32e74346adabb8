using System.CommandLine;
using System.Globalization;
using RawInfer.Models.Gguf;

namespace RawInfer.Cli.Commands;

/// <summary>
/// <c>rawinfer model convert IN.bin --tokenizer TOK.bin OUT.gguf [--dtype T]</c>: a llama2.c checkpoint and its
/// tokenizer as one GGUF file that llama.cpp and RawInfer both run.
/// </summary>
internal static class ModelConvertCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var input = new Argument<string>("checkpoint") { Description = "llama2.c checkpoint to convert." };
        var outPath = new Argument<string>("out") { Description = "GGUF file to write." };
        var tokenizer = new Option<string>("--tokenizer") { Description = "llama2.c tokenizer file of the checkpoint.", Required = true };
        var dtype = DtypeOption.Create();
        var command = new Command("convert", "Convert a llama2.c checkpoint and tokenizer to GGUF.");
        command.Arguments.Add(input);
        command.Arguments.Add(outPath);
        command.Options.Add(tokenizer);
        command.Options.Add(dtype);
        command.SetAction((parse, _) => CliApp.Guard(error, () =>
        {
            var source = parse.GetValue(input)!;
            var target = parse.GetValue(outPath)!;
            var tokenizerPath = parse.GetValue(tokenizer)!;
            foreach (var file in new[] { source, tokenizerPath })
            {
                if (!File.Exists(file))
                {
                    throw new CliException($"file not found: {file}");
                }
            }

            Llama2cToGguf.Convert(source, tokenizerPath, target, DtypeOption.Parse(parse.GetValue(dtype)!));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {target}: {new FileInfo(target).Length:N0} bytes"));
            return Task.FromResult(0);
        }));
        return command;
    }
}
