using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>
/// Checks every native result. The caller's argument expression ("CudaApi.cuMemAlloc_v2(&amp;pointer, bytes)")
/// names the call, so each call site is one line and the throw path stays out of line.
/// </summary>
internal static unsafe class Check
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Cuda(int result, [CallerArgumentExpression(nameof(result))] string expression = "")
    {
        if (result != 0)
        {
            ThrowCuda(result, expression);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Nvrtc(int result, [CallerArgumentExpression(nameof(result))] string expression = "")
    {
        if (result != 0)
        {
            ThrowNvrtc(result, expression);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Cublas(int result, [CallerArgumentExpression(nameof(result))] string expression = "")
    {
        if (result != 0)
        {
            ThrowCublas(result, expression);
        }
    }

    /// <summary>"CudaApi.cuMemAlloc_v2(&amp;p, n)" → "cuMemAlloc_v2": the last member name before the argument list.</summary>
    internal static string CallName(string expression)
    {
        var span = expression.AsSpan().Trim();
        var open = span.IndexOf('(');
        if (open >= 0)
        {
            span = span[..open];
        }

        var dot = span.LastIndexOf('.');
        return (dot >= 0 ? span[(dot + 1)..] : span).Trim().ToString();
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void ThrowCuda(int result, string expression) =>
        throw new CudaException(CallName(expression), result, CudaErrorName(result), CudaErrorDescription(result));

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void ThrowNvrtc(int result, string expression) =>
        throw new NvrtcException(CallName(expression), result, ErrorNames.Nvrtc(result));

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void ThrowCublas(int result, string expression) =>
        throw new CublasException(CallName(expression), result, ErrorNames.Cublas(result));

    /// <summary>The driver's own name when it knows the code (newer codes than our table), else the table's.</summary>
    internal static string CudaErrorName(int result)
    {
        byte* text = null;
        return TryDriverText(result, name: true, &text) ? Marshal.PtrToStringUTF8((nint)text) ?? ErrorNames.Cuda(result) : ErrorNames.Cuda(result);
    }

    private static string? CudaErrorDescription(int result)
    {
        byte* text = null;
        return TryDriverText(result, name: false, &text) ? Marshal.PtrToStringUTF8((nint)text) : null;
    }

    private static bool TryDriverText(int result, bool name, byte** text)
    {
        // Only ask the driver when it is already loaded: an error code can only come from a loaded driver, but
        // tests construct errors without one.
        if (NativeLibraryResolver.LoadedPath(NativeLibraryKind.CudaDriver) is null)
        {
            return false;
        }

        var status = name ? CudaApi.cuGetErrorName(result, text) : CudaApi.cuGetErrorString(result, text);
        return status == 0 && *text != null;
    }
}
