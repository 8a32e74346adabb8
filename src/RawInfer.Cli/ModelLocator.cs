namespace RawInfer.Cli;

/// <summary>
/// Finds model and tokenizer files: an explicit path, else the default file name in $RAWINFER_MODELS, then in the
/// per-user cache. Failing, the error lists every place tried and how to get the file.
/// </summary>
internal static class ModelLocator
{
    public static string ResolveModel(string? explicitPath, CliContext context)
    {
        if (explicitPath is not null)
        {
            return File.Exists(explicitPath) ? explicitPath : throw new CliException($"model file not found: {explicitPath}");
        }

        var model = KnownModels.Default;
        return FindInDefaultPlaces(model.ModelFileName, context, modelDirectory: null)
            ?? throw new CliException(
                $"no model given and {model.ModelFileName} not found (tried {string.Join(", ", Candidates(model.ModelFileName, context, null))}); " +
                $"run `rawinfer model pull {model.Name}` or pass --model PATH");
    }

    public static string ResolveTokenizer(string? explicitPath, string modelPath, int vocabSize, CliContext context)
    {
        if (explicitPath is not null)
        {
            return File.Exists(explicitPath) ? explicitPath : throw new CliException($"tokenizer file not found: {explicitPath}");
        }

        var fileName = DefaultTokenizerName(vocabSize)
            ?? throw new CliException($"no default tokenizer for a vocabulary of {vocabSize}; pass --tokenizer PATH");
        var modelDirectory = Path.GetDirectoryName(Path.GetFullPath(modelPath));
        return FindInDefaultPlaces(fileName, context, modelDirectory)
            ?? throw new CliException(
                $"tokenizer {fileName} for a vocabulary of {vocabSize} not found (tried {string.Join(", ", Candidates(fileName, context, modelDirectory))}); " +
                $"pass --tokenizer PATH{(vocabSize == 512 ? $" or run `rawinfer model pull {KnownModels.Stories260K.Name}`" : "")}");
    }

    /// <summary>llama2.c's vocabularies: tok512.bin for stories260K, tokenizer.bin for Llama 2's 32,000 tokens.</summary>
    private static string? DefaultTokenizerName(int vocabSize) => vocabSize switch
    {
        512 => "tok512.bin",
        32000 => "tokenizer.bin",
        _ => null,
    };

    private static string? FindInDefaultPlaces(string fileName, CliContext context, string? modelDirectory)
    {
        foreach (var candidate in Candidates(fileName, context, modelDirectory))
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static List<string> Candidates(string fileName, CliContext context, string? modelDirectory)
    {
        var candidates = new List<string>(3);
        if (modelDirectory is not null)
        {
            candidates.Add(Path.Combine(modelDirectory, fileName));
        }

        if (context.ModelsDirectoryFromEnvironment is { } fromEnvironment)
        {
            candidates.Add(Path.Combine(fromEnvironment, fileName));
        }

        if (context.CacheModelsDirectory is { } cache)
        {
            candidates.Add(Path.Combine(cache, fileName));
        }
        return candidates;
    }
}
