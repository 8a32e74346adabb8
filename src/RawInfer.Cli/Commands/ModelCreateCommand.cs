using System.CommandLine;
using System.Globalization;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;

namespace RawInfer.Cli.Commands;

/// <summary><c>rawinfer model create --shape S --seed N --out FILE</c>: a checkpoint with random weights.</summary>
internal static class ModelCreateCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var shape = new Option<string>("--shape")
        {
            Description = $"{string.Join(", ", ModelShapes.Names)}, or dim=..,hidden=..,layers=..,heads=..,kv_heads=..,vocab=..,seq=..",
            Required = true,
        };
        var seed = new Option<int>("--seed") { Description = "Seed of the random weights.", DefaultValueFactory = _ => 0 };
        var outPath = new Option<string>("--out", "-o") { Description = "File to write.", Required = true };
        var format = new Option<string>("--format") { Description = "File format: llama2c or gguf.", DefaultValueFactory = _ => "llama2c" };
        format.AcceptOnlyFromAmong("llama2c", "gguf");
        var dtype = DtypeOption.Create();
        var tokenizer = new Option<string?>("--tokenizer")
        {
            Description = "GGUF only: a llama2.c tokenizer file whose vocabulary goes into the metadata (default: byte tokens and filler pieces).",
        };

        var command = new Command("create", "Write a model file of a given shape with deterministic random weights.");
        command.Options.Add(shape);
        command.Options.Add(seed);
        command.Options.Add(outPath);
        command.Options.Add(format);
        command.Options.Add(dtype);
        command.Options.Add(tokenizer);
        command.SetAction((parse, _) => CliApp.Guard(error, () =>
        {
            var config = ModelShapes.Parse(parse.GetValue(shape)!);
            var path = parse.GetValue(outPath)!;
            var directory = Path.GetDirectoryName(Path.GetFullPath(path));
            if (directory is not null && !Directory.Exists(directory))
            {
                throw new CliException($"output folder does not exist: {directory}");
            }

            var type = DtypeOption.Parse(parse.GetValue(dtype)!);
            if (parse.GetValue(format) == "gguf")
            {
                GgufModelWriter.WriteSynthetic(path, config, parse.GetValue(seed), type, parse.GetValue(tokenizer));
            }
            else if (type != TensorType.F32 || parse.GetValue(tokenizer) is not null)
            {
                throw new CliException("llama2.c checkpoints hold float32 weights and no vocabulary: use --format gguf for --dtype or --tokenizer");
            }
            else
            {
                Llama2cCheckpointWriter.WriteSynthetic(path, config, parse.GetValue(seed));
            }
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {path}: {ModelFiles.ShapeText(config)}, {config.ParameterCount:N0} parameters, {new FileInfo(path).Length:N0} bytes"));
            return Task.FromResult(0);
        }));
        return command;
    }
}
