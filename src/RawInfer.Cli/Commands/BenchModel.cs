using System.Text;
using RawInfer.Engine;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tokenizers;

namespace RawInfer.Cli.Commands;

/// <summary>
/// The synthetic model a <c>rawinfer bench</c> run uses, and the engine limits it passes through. F32 stays a
/// llama2.c checkpoint (as before the dtype option existed, so earlier files are reused); F16, BF16 and Q8_0 are
/// written as GGUF, the only format that holds them.
/// </summary>
internal static class BenchModel
{
    /// <summary>The default file for a shape and dtype in the temp folder.</summary>
    public static string DefaultPath(string shape, TensorType dtype)
    {
        var name = new StringBuilder();
        foreach (var ch in shape)
        {
            name.Append(char.IsAsciiLetterOrDigit(ch) ? ch : '_'); // key=value shapes make odd file names
        }

        return Path.Combine(Path.GetTempPath(), dtype == TensorType.F32
            ? $"rawinfer-bench-{name}.bin"
            : $"rawinfer-bench-{name}-{dtype.ToString().ToLowerInvariant()}.gguf");
    }

    /// <summary>Writes the synthetic model unless the file exists (a given file is used as it is, whatever its dtype).</summary>
    public static async Task EnsureAsync(string path, string shape, ModelConfig config, TensorType dtype, TextWriter error)
    {
        if (File.Exists(path))
        {
            return;
        }

        await error.WriteLineAsync($"writing synthetic {shape} {dtype.ToString().ToLowerInvariant()} model to {path}").ConfigureAwait(false);
        if (dtype == TensorType.F32 && !path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            Llama2cCheckpointWriter.WriteSynthetic(path, config, seed: 1);
        }
        else
        {
            GgufModelWriter.WriteSynthetic(path, config, seed: 1, dtype);
        }
    }

    /// <summary>
    /// Engine options with the command's <c>--max-batched-tokens</c> and <c>--max-running</c> applied where given.
    /// </summary>
    public static EngineOptions Apply(EngineOptions options, int? maxBatchedTokens, int? maxRunning) => options with
    {
        MaxBatchedTokens = maxBatchedTokens ?? options.MaxBatchedTokens,
        MaxRunningSequences = maxRunning ?? options.MaxRunningSequences,
    };

    /// <summary>Rejects engine limits below 1 with the option's name (the engine itself would name its field).</summary>
    public static void CheckLimits(int? maxBatchedTokens, int? maxRunning)
    {
        if (maxBatchedTokens is < 1)
        {
            throw new CliException($"--max-batched-tokens must be >= 1, not {maxBatchedTokens}");
        }

        if (maxRunning is < 1)
        {
            throw new CliException($"--max-running must be >= 1, not {maxRunning}");
        }
    }
}

/// <summary>Random weights make random tokens: the benchmark measures speed and prints no text.</summary>
internal sealed class SilentTokenizer(int vocabSize) : ITokenizer
{
    public int VocabSize => vocabSize;

    public int BosId => 1;

    public int EosId => 2;

    public int[] Encode(string text, bool addBos, bool addEos) => addBos ? [1] : [];

    public ReadOnlySpan<byte> TokenBytes(int previousTokenId, int tokenId) => [];
}
