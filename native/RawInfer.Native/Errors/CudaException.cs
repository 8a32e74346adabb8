namespace RawInfer.Native;

/// <summary>
/// A CUDA driver call failed. The message reads like
/// "cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory".
/// </summary>
public class CudaException : Exception
{
    /// <summary>Creates an exception with no call information (for serializers and tests).</summary>
    public CudaException()
        : this("CUDA call failed")
    {
    }

    /// <summary>Creates an exception with a message and no call information.</summary>
    public CudaException(string message)
        : base(message)
    {
        Call = "";
        ErrorName = "";
    }

    /// <summary>Creates an exception with a message, an inner exception and no call information.</summary>
    public CudaException(string message, Exception innerException)
        : base(message, innerException)
    {
        Call = "";
        ErrorName = "";
    }

    /// <summary>Creates the exception for <paramref name="call"/> returning <paramref name="code"/>.</summary>
    public CudaException(string call, int code, string errorName, string? description, string? detail = null)
        : base(FormatMessage(call, code, errorName, description, detail))
    {
        Call = call;
        Code = code;
        ErrorName = errorName;
    }

    /// <summary>The driver function that failed, e.g. "cuMemAlloc_v2".</summary>
    public string Call { get; }

    /// <summary>The CUresult value.</summary>
    public int Code { get; }

    /// <summary>The CUresult name, e.g. "CUDA_ERROR_OUT_OF_MEMORY".</summary>
    public string ErrorName { get; }

    internal static string FormatMessage(string call, int code, string errorName, string? description, string? detail)
    {
        var text = string.IsNullOrEmpty(description)
            ? $"{call} failed: {errorName} ({code})"
            : $"{call} failed: {errorName} ({code}): {description}";
        return string.IsNullOrEmpty(detail) ? text : $"{text}{Environment.NewLine}{detail}";
    }
}

/// <summary>cuModuleLoadDataEx failed; <see cref="JitLog"/> holds the driver's JIT error log (ptxas messages).</summary>
public sealed class CudaModuleLoadException : CudaException
{
    /// <summary>Creates an exception with an empty log.</summary>
    public CudaModuleLoadException()
    {
        JitLog = "";
    }

    /// <summary>Creates an exception with a message and an empty log.</summary>
    public CudaModuleLoadException(string message)
        : base(message)
    {
        JitLog = "";
    }

    /// <summary>Creates an exception with a message, an inner exception and an empty log.</summary>
    public CudaModuleLoadException(string message, Exception innerException)
        : base(message, innerException)
    {
        JitLog = "";
    }

    /// <summary>Creates the exception for a failed module load with the JIT log.</summary>
    public CudaModuleLoadException(string call, int code, string errorName, string? description, string jitLog)
        : base(call, code, errorName, description, string.IsNullOrWhiteSpace(jitLog) ? null : "JIT log: " + jitLog)
    {
        JitLog = jitLog;
    }

    /// <summary>The JIT error log (may be empty when the driver wrote none).</summary>
    public string JitLog { get; }
}
