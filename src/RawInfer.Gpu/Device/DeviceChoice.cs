namespace RawInfer.Gpu.Device;

/// <summary>Which backend a command runs the model on (<c>--device cpu|cuda|auto</c>).</summary>
public enum DeviceChoice
{
    /// <summary>The CPU backend, whatever hardware is present.</summary>
    Cpu,

    /// <summary>A CUDA device; an error when there is none.</summary>
    Cuda,

    /// <summary>CUDA when a driver and a device are present, else the CPU with a one-line notice.</summary>
    Auto,
}

/// <summary>Parsing and naming of <see cref="DeviceChoice"/> values.</summary>
public static class DeviceChoices
{
    /// <summary>The accepted spellings, in the order help text lists them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["cpu", "cuda", "auto"];

    /// <summary>Parses "cpu", "cuda" or "auto" (case-insensitive, surrounding blanks ignored).</summary>
    public static bool TryParse(string? text, out DeviceChoice choice)
    {
        switch (text?.Trim().ToUpperInvariant())
        {
            case "CPU":
                choice = DeviceChoice.Cpu;
                return true;
            case "CUDA":
                choice = DeviceChoice.Cuda;
                return true;
            case "AUTO":
                choice = DeviceChoice.Auto;
                return true;
            default:
                choice = default;
                return false;
        }
    }

    /// <summary>Parses a device name.</summary>
    /// <exception cref="FormatException">The text is none of <see cref="Names"/> (the message lists them).</exception>
    public static DeviceChoice Parse(string? text) => TryParse(text, out var choice)
        ? choice
        : throw new FormatException($"unknown device '{text}': use one of {string.Join(", ", Names)}");

    /// <summary>The lower-case name of <paramref name="choice"/>.</summary>
    public static string ToName(this DeviceChoice choice) => choice switch
    {
        DeviceChoice.Cpu => "cpu",
        DeviceChoice.Cuda => "cuda",
        _ => "auto",
    };
}
