using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>Compiling one program.</summary>
public static unsafe partial class Nvrtc
{
    /// <summary>
    /// Compiles <paramref name="source"/> for <paramref name="architecture"/>: "sm_90" gives a cubin (plus PTX when
    /// NVRTC offers it), "compute_90" gives PTX only. <paramref name="name"/> appears in the log ("name(12): error").
    /// <paramref name="headers"/> maps include names to their text. Throws <see cref="NvrtcCompileException"/>
    /// (with the log) when the source does not compile or an option is rejected.
    /// </summary>
    public static NvrtcOutput Compile(
        string source,
        string name,
        string architecture,
        IReadOnlyList<string>? options = null,
        IReadOnlyDictionary<string, string>? headers = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var realArchitecture = ParseArchitecture(architecture);
        EnsureLoaded();

        var allOptions = new List<string>(1 + (options?.Count ?? 0)) { "--gpu-architecture=" + architecture };
        if (options is not null)
        {
            allOptions.AddRange(options);
        }

        var headerNames = new List<string>();
        var headerTexts = new List<string>();
        if (headers is not null)
        {
            foreach (var (includeName, text) in headers)
            {
                headerNames.Add(includeName);
                headerTexts.Add(text);
            }
        }

        using var strings = new NativeUtf8Strings([source, name]);
        using var headerTextStrings = new NativeUtf8Strings(headerTexts);
        using var headerNameStrings = new NativeUtf8Strings(headerNames);
        using var optionStrings = new NativeUtf8Strings(allOptions);

        nint created;
        Check.Nvrtc(NvrtcApi.nvrtcCreateProgram(
            &created, strings[0], strings[1], headerTexts.Count, headerTextStrings.Pointers, headerNameStrings.Pointers));
        using var programHandle = new NvrtcProgramHandle(created);
        var program = programHandle.DangerousGetHandle();
        var result = NvrtcApi.nvrtcCompileProgram(program, optionStrings.Count, optionStrings.Pointers);
        var log = ReadLog(program);
        if (result != 0)
        {
            throw new NvrtcCompileException(
                "nvrtcCompileProgram", result, ErrorName(result), name, string.Join(' ', allOptions), log);
        }

        string? ptx = null;
        byte[]? cubin = null;
        if (realArchitecture)
        {
            cubin = ReadCubin(program);
            ptx = TryReadPtx(program);
        }
        else
        {
            ptx = TryReadPtx(program) ?? throw new NvrtcException("nvrtcGetPTX", 3, ErrorNames.Nvrtc(3), "no PTX after a successful compile");
        }

        return new NvrtcOutput { Ptx = ptx, Cubin = cubin, Log = log, Architecture = architecture };
    }

    /// <summary>
    /// True for a real architecture ("sm_90", "sm_90a": a cubin), false for a virtual one ("compute_90": PTX).
    /// Anything else is rejected here, before NVRTC would report a less specific option error.
    /// </summary>
    internal static bool ParseArchitecture(string architecture)
    {
        ArgumentException.ThrowIfNullOrEmpty(architecture);
        bool real;
        ReadOnlySpan<char> number;
        if (architecture.StartsWith("sm_", StringComparison.Ordinal))
        {
            real = true;
            number = architecture.AsSpan(3);
        }
        else if (architecture.StartsWith("compute_", StringComparison.Ordinal))
        {
            real = false;
            number = architecture.AsSpan(8);
        }
        else
        {
            ThrowBadArchitecture(architecture);
            return false;
        }

        if (number.Length > 0 && char.IsAsciiLetterLower(number[^1]))
        {
            number = number[..^1]; // "sm_90a", "sm_100f": architecture-specific feature sets
        }

        if (number.Length is < 2 or > 3 || number.ContainsAnyExcept("0123456789"))
        {
            ThrowBadArchitecture(architecture);
        }

        return real;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadArchitecture(string architecture) =>
        throw new ArgumentException(
            $"architecture '{architecture}' is not sm_XX (cubin) or compute_XX (PTX), e.g. sm_90 or compute_80",
            nameof(architecture));

    private static string ReadLog(nint program)
    {
        nuint size;
        Check.Nvrtc(NvrtcApi.nvrtcGetProgramLogSize(program, &size));
        if (size <= 1)
        {
            return "";
        }

        var buffer = new byte[(int)size];
        fixed (byte* pointer = buffer)
        {
            Check.Nvrtc(NvrtcApi.nvrtcGetProgramLog(program, pointer));
        }

        return Encoding.UTF8.GetString(buffer, 0, buffer.Length - 1).Trim();
    }

    private static string? TryReadPtx(nint program)
    {
        // For a real architecture some NVRTC releases keep no PTX; that is not an error for the caller.
        nuint size;
        if (NvrtcApi.nvrtcGetPTXSize(program, &size) != 0 || size <= 1)
        {
            return null;
        }

        var buffer = new byte[(int)size];
        fixed (byte* pointer = buffer)
        {
            if (NvrtcApi.nvrtcGetPTX(program, pointer) != 0)
            {
                return null;
            }
        }

        return Encoding.UTF8.GetString(buffer, 0, buffer.Length - 1);
    }

    private static byte[] ReadCubin(nint program)
    {
        nuint size;
        Check.Nvrtc(NvrtcApi.nvrtcGetCUBINSize(program, &size));
        var buffer = new byte[(int)size];
        fixed (byte* pointer = buffer)
        {
            Check.Nvrtc(NvrtcApi.nvrtcGetCUBIN(program, pointer));
        }

        return buffer;
    }
}

/// <summary>An nvrtcProgram, destroyed by nvrtcDestroyProgram.</summary>
internal sealed unsafe class NvrtcProgramHandle : SafeHandle
{
    public NvrtcProgramHandle(nint program)
        : base(0, ownsHandle: true) => SetHandle(program);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        var program = handle;
        return NvrtcApi.nvrtcDestroyProgram(&program) == 0;
    }
}
