using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RawInfer.Protocol;

/// <summary>
/// Bytes that break the wire contract: the only exception the decoder throws. The message names the frame type,
/// the field or offset, and the limit.
/// </summary>
public sealed class ProtocolException : Exception
{
    public ProtocolException()
        : this("protocol violation")
    {
    }

    public ProtocolException(string message)
        : base(message)
    {
    }

    public ProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void Throw(string message) => throw new ProtocolException(message);
}
