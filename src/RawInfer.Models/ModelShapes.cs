using System.Globalization;
using RawInfer.Models.Llama2c;

namespace RawInfer.Models;

/// <summary>
/// Named model shapes and a key=value shape syntax, for creating synthetic checkpoints from the command line.
/// </summary>
public static class ModelShapes
{
    /// <summary>Shape names <see cref="Parse"/> knows (Llama 2 architecture, 32,000-token vocabulary unless noted).</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { "260k", "15m", "42m", "110m", "1b" };

    /// <summary>
    /// Parses a shape: a name from <see cref="Names"/> (TinyStories 260K/15M/42M/110M; "1b" is TinyLlama 1.1B:
    /// dim 2048, hidden 5632, 22 layers, 32 heads, 4 KV heads, seq 2048), or a comma-separated list
    /// <c>dim=..,hidden=..,layers=..,heads=..,kv_heads=..,vocab=..,seq=..</c> where kv_heads defaults to heads
    /// and an optional <c>shared=false</c> asks for an unshared classifier.
    /// </summary>
    /// <exception cref="FormatException">Unknown name, bad syntax, a missing key, or a shape that breaks a header limit.</exception>
    public static ModelConfig Parse(string shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var trimmed = shape.Trim();
        var config = trimmed.ToUpperInvariant() switch
        {
            "260K" => new ModelConfig(64, 172, 5, 8, 4, 512, 512, SharedClassifier: true),
            "15M" => new ModelConfig(288, 768, 6, 6, 6, 32000, 256, SharedClassifier: true),
            "42M" => new ModelConfig(512, 1376, 8, 8, 8, 32000, 1024, SharedClassifier: true),
            "110M" => new ModelConfig(768, 2048, 12, 12, 12, 32000, 1024, SharedClassifier: true),
            "1B" => new ModelConfig(2048, 5632, 22, 32, 4, 32000, 2048, SharedClassifier: false),
            _ when trimmed.Contains('=', StringComparison.Ordinal) => ParseKeyValues(trimmed),
            _ => throw new FormatException(
                $"unknown model shape '{shape}': use one of {string.Join(", ", Names)} or dim=..,hidden=..,layers=..,heads=..,kv_heads=..,vocab=..,seq=.."),
        };

        if (Llama2cLayout.CheckLimits(config) is { } problem)
        {
            throw new FormatException($"model shape '{shape}': {problem.Field} {problem.Reason}");
        }

        return config;
    }

    private static ModelConfig ParseKeyValues(string shape)
    {
        var values = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var shared = true;
        foreach (var part in shape.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new FormatException($"model shape '{shape}': '{part}' is not key=value");
            }

            var key = part[..eq].Trim();
            var text = part[(eq + 1)..].Trim();
            if (key.Equals("shared", StringComparison.OrdinalIgnoreCase))
            {
                shared = bool.TryParse(text, out var b)
                    ? b
                    : throw new FormatException($"model shape '{shape}': shared must be true or false, not '{text}'");
                continue;
            }

            if (Array.IndexOf(Keys, key.ToLowerInvariant()) < 0)
            {
                throw new FormatException($"model shape '{shape}': unknown key '{key}' (known: {string.Join(", ", Keys)}, shared)");
            }

            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                throw new FormatException($"model shape '{shape}': {key}='{text}' is not an integer");
            }

            if (!values.TryAdd(key, value))
            {
                throw new FormatException($"model shape '{shape}': {key} given twice");
            }
        }

        int Get(string key) => values.TryGetValue(key, out var v)
            ? v
            : throw new FormatException($"model shape '{shape}': missing {key}=");

        var heads = Get("heads");
        var kvHeads = values.TryGetValue("kv_heads", out var kv) ? kv : heads;
        return new ModelConfig(Get("dim"), Get("hidden"), Get("layers"), heads, kvHeads, Get("vocab"), Get("seq"), shared);
    }

    private static readonly string[] Keys = { "dim", "hidden", "layers", "heads", "kv_heads", "vocab", "seq" };
}
