namespace RawInfer.Cli;

/// <summary>A file of a downloadable model and the SHA-256 it must have.</summary>
internal sealed record ModelFile(string Name, string Sha256);

/// <summary>A model <c>rawinfer model pull</c> knows how to fetch.</summary>
internal sealed record KnownModel(string Name, Uri DefaultBaseUrl, string ModelFileName, string TokenizerFileName, IReadOnlyList<ModelFile> Files);

internal static class KnownModels
{
    /// <summary>
    /// Karpathy's 260K-parameter TinyStories model and its 512-token vocabulary (karpathy/tinyllamas on the Hugging
    /// Face hub, MIT). Hashes are of the published files.
    /// </summary>
    public static KnownModel Stories260K { get; } = new(
        "stories260K",
        new Uri("https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/"),
        "stories260K.bin",
        "tok512.bin",
        [
            new ModelFile("stories260K.bin", "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696"),
            new ModelFile("tok512.bin", "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312"),
        ]);

    public static IReadOnlyList<KnownModel> All { get; } = [Stories260K];

    /// <summary>The default model of <c>generate</c>.</summary>
    public static KnownModel Default => Stories260K;

    public static KnownModel? Find(string name)
    {
        foreach (var model in All)
        {
            if (string.Equals(model.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return model;
            }
        }

        return null;
    }
}
