using System.Runtime.CompilerServices;

namespace RawInfer.Tests;

/// <summary>
/// Where tests find the shared checkpoints and tokenizer vectors. CI sets RAWINFER_TEST_MODELS and
/// RAWINFER_TEST_TOKENIZERS; locally the repository's sibling folder is found by walking up from this file.
/// A missing folder fails the test loudly: a model test that silently skips is a test that cannot fail.
/// </summary>
internal static class TestPaths
{
    public static string ModelsDir => Resolve("RAWINFER_TEST_MODELS", "models");

    public static string TokenizersDir => Resolve("RAWINFER_TEST_TOKENIZERS", "tokenizers");

    public static string Model(string fileName) => Path.Combine(ModelsDir, fileName);

    private static string Resolve(string variable, string sharedSubfolder, [CallerFilePath] string thisFile = "")
    {
        var fromEnv = Environment.GetEnvironmentVariable(variable);
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return Directory.Exists(fromEnv)
                ? fromEnv
                : throw new DirectoryNotFoundException($"{variable}={fromEnv} does not exist");
        }

        for (var dir = Path.GetDirectoryName(thisFile); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            var candidate = Path.Combine(dir, "shared", sharedSubfolder);
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException(
            $"Test data not found: set {variable} to the folder holding the shared {sharedSubfolder}.");
    }
}
