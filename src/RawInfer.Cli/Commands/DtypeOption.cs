using System.CommandLine;
using RawInfer.Models;

namespace RawInfer.Cli.Commands;

/// <summary>The <c>--dtype f32|f16|bf16|q8_0</c> option shared by the commands that write GGUF weights.</summary>
internal static class DtypeOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--dtype")
        {
            Description = "Weight type of the matrices: f32, f16, bf16 or q8_0 (norms stay f32).",
            DefaultValueFactory = _ => "f32",
        };
        option.AcceptOnlyFromAmong("f32", "f16", "bf16", "q8_0");
        return option;
    }

    public static TensorType Parse(string text) => text switch
    {
        "f32" => TensorType.F32,
        "f16" => TensorType.F16,
        "bf16" => TensorType.BF16,
        "q8_0" => TensorType.Q8_0,
        _ => throw new CliException($"unknown --dtype {text}"),
    };
}
