using System.Runtime.InteropServices;
using System.Text;
using LLama.Native;

namespace RawInfer.LlamaCompare;

/// <summary>
/// Which llama.cpp build LLamaSharp loaded and what it reports about the CPU. LLamaSharp picks the most capable
/// build of <c>LLamaSharp.Backend.Cpu</c> the machine supports (noavx, avx, avx2, avx512); the path is read
/// back from the process's own memory map, so it names the file actually mapped, not the one asked for.
/// </summary>
internal static class NativeInfo
{
    private static readonly StringBuilder LoadLog = new();

    /// <summary>Routes llama.cpp's log into a buffer (warnings and errors are kept); call before the first model load.</summary>
    public static void CaptureLog()
    {
        NativeLibraryConfig.All.WithLogCallback((level, message) =>
        {
            if (level is LLamaLogLevel.Warning or LLamaLogLevel.Error)
            {
                lock (LoadLog)
                {
                    LoadLog.Append(message);
                }
            }
        });
    }

    /// <summary>Warnings and errors llama.cpp logged so far.</summary>
    public static string Warnings()
    {
        lock (LoadLog)
        {
            return LoadLog.ToString().Trim();
        }
    }

    /// <summary>Lines describing the loaded native library (call after a model is loaded).</summary>
    public static IReadOnlyList<string> Describe()
    {
        var lines = new List<string>();
        var library = NativeApi.GetLoadedNativeLibrary(NativeLibraryName.LLama);
        lines.Add($"LLamaSharp native library: {library?.Metadata?.ToString() ?? "(unknown)"}");
        foreach (var path in MappedLibraries())
        {
            lines.Add($"  mapped: {path}");
        }

        lines.Add($"llama.cpp system info: {SystemInfo().Trim()}");
        return lines;
    }

    private static string SystemInfo()
    {
        var text = NativeApi.llama_print_system_info();
        return text == IntPtr.Zero ? "(none)" : Marshal.PtrToStringUTF8(text) ?? "(none)";
    }

    /// <summary>The llama/ggml shared objects in /proc/self/maps (Linux); empty elsewhere.</summary>
    private static List<string> MappedLibraries()
    {
        var found = new List<string>();
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps))
        {
            return found;
        }

        foreach (var line in File.ReadLines(maps))
        {
            var slash = line.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0)
            {
                continue;
            }

            var path = line[slash..];
            var name = Path.GetFileName(path);
            if ((name.StartsWith("libllama", StringComparison.Ordinal) || name.StartsWith("libggml", StringComparison.Ordinal))
                && !found.Contains(path))
            {
                found.Add(path);
            }
        }

        return found;
    }
}
