namespace RawInfer.Native;

/// <summary>An NVRTC call failed; the message names the call and the nvrtcResult name.</summary>
public class NvrtcException : Exception
{
    /// <summary>Creates an exception with no call information.</summary>
    public NvrtcException()
        : this("NVRTC call failed")
    {
    }

    /// <summary>Creates an exception with a message and no call information.</summary>
    public NvrtcException(string message)
        : base(message)
    {
        Call = "";
        ErrorName = "";
    }

    /// <summary>Creates an exception with a message, an inner exception and no call information.</summary>
    public NvrtcException(string message, Exception innerException)
        : base(message, innerException)
    {
        Call = "";
        ErrorName = "";
    }

    /// <summary>Creates the exception for <paramref name="call"/> returning <paramref name="code"/>.</summary>
    public NvrtcException(string call, int code, string errorName, string? detail = null)
        : base(CudaException.FormatMessage(call, code, errorName, null, detail))
    {
        Call = call;
        Code = code;
        ErrorName = errorName;
    }

    /// <summary>The NVRTC function that failed, e.g. "nvrtcCompileProgram".</summary>
    public string Call { get; }

    /// <summary>The nvrtcResult value.</summary>
    public int Code { get; }

    /// <summary>The nvrtcResult name, e.g. "NVRTC_ERROR_COMPILATION".</summary>
    public string ErrorName { get; }
}

/// <summary>A program did not compile (or an option was rejected); <see cref="Log"/> is NVRTC's program log.</summary>
public sealed class NvrtcCompileException : NvrtcException
{
    /// <summary>Creates an exception with an empty log.</summary>
    public NvrtcCompileException()
    {
        Log = "";
    }

    /// <summary>Creates an exception with a message and an empty log.</summary>
    public NvrtcCompileException(string message)
        : base(message)
    {
        Log = "";
    }

    /// <summary>Creates an exception with a message, an inner exception and an empty log.</summary>
    public NvrtcCompileException(string message, Exception innerException)
        : base(message, innerException)
    {
        Log = "";
    }

    /// <summary>Creates the exception for a failed compile of <paramref name="programName"/>.</summary>
    public NvrtcCompileException(string call, int code, string errorName, string programName, string options, string log)
        : base(call, code, errorName, $"program {programName}, options: {options}{Environment.NewLine}{log.TrimEnd()}")
    {
        Log = log;
    }

    /// <summary>NVRTC's log: one "name(line): error: ..." line per diagnostic.</summary>
    public string Log { get; }
}

/// <summary>A cuBLAS call failed; the message names the call and the cublasStatus_t name.</summary>
public sealed class CublasException : Exception
{
    /// <summary>Creates an exception with no call information.</summary>
    public CublasException()
        : this("cuBLAS call failed")
    {
    }

    /// <summary>Creates an exception with a message and no call information.</summary>
    public CublasException(string message)
        : base(message)
    {
        Call = "";
        ErrorName = "";
    }

    /// <summary>Creates an exception with a message, an inner exception and no call information.</summary>
    public CublasException(string message, Exception innerException)
        : base(message, innerException)
    {
        Call = "";
        ErrorName = "";
    }

    /// <summary>Creates the exception for <paramref name="call"/> returning <paramref name="code"/>.</summary>
    public CublasException(string call, int code, string errorName)
        : base(CudaException.FormatMessage(call, code, errorName, null, null))
    {
        Call = call;
        Code = code;
        ErrorName = errorName;
    }

    /// <summary>The cuBLAS function that failed, e.g. "cublasGemmEx".</summary>
    public string Call { get; }

    /// <summary>The cublasStatus_t value.</summary>
    public int Code { get; }

    /// <summary>The cublasStatus_t name, e.g. "CUBLAS_STATUS_INVALID_VALUE".</summary>
    public string ErrorName { get; }
}
