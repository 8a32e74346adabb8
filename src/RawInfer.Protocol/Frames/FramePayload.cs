namespace RawInfer.Protocol;

/// <summary>A frame's typed payload: knows its type, header flags, exact size and how to write itself.</summary>
public abstract record FramePayload
{
    /// <summary>The header's type byte.</summary>
    public abstract FrameType Type { get; }

    /// <summary>The header's flags byte.</summary>
    internal virtual byte HeaderFlags => 0;

    /// <summary>Exact payload bytes <see cref="WritePayload"/> writes.</summary>
    internal abstract int MeasurePayload();

    internal abstract void WritePayload(ref PayloadWriter writer);
}

/// <summary>HELLO: the client's first frame.</summary>
public sealed record HelloFrame(ushort Version, ReadOnlyMemory<byte> ApiKey, string ClientName) : FramePayload
{
    public override FrameType Type => FrameType.Hello;

    internal override int MeasurePayload() => 4 + 2 + 2 + ApiKey.Length + PayloadWriter.StringSize(ClientName);

    internal override void WritePayload(ref PayloadWriter writer)
    {
        writer.U32(ProtocolConstants.Magic);
        writer.U16(Version);
        writer.Bytes16(ApiKey.Span);
        writer.String(ClientName);
    }

    internal static HelloFrame Read(ref PayloadReader reader)
    {
        var magic = reader.U32("magic");
        if (magic != ProtocolConstants.Magic)
        {
            reader.Fail("magic", 0, $"0x{magic:X8} is not 0x{ProtocolConstants.Magic:X8} ('RINF')");
        }

        var version = reader.U16("version");
        var key = reader.Bytes16("api key", ProtocolConstants.MaxApiKeyBytes);
        var name = reader.String("client name", ProtocolConstants.MaxClientNameBytes);
        return new HelloFrame(version, key, name);
    }
}

/// <summary>WELCOME: the handshake succeeded; the limits that now apply.</summary>
public sealed record WelcomeFrame(
    ushort Version, int MaxFrameBytes, int MaxInFlightRequests, ulong SessionId, int MaxPromptTokens, int MaxTokens) : FramePayload
{
    public override FrameType Type => FrameType.Welcome;

    internal override int MeasurePayload() => 2 + 4 + 4 + 8 + 4 + 4;

    internal override void WritePayload(ref PayloadWriter writer)
    {
        writer.U16(Version);
        writer.I32(MaxFrameBytes);
        writer.I32(MaxInFlightRequests);
        writer.U64(SessionId);
        writer.I32(MaxPromptTokens);
        writer.I32(MaxTokens);
    }

    internal static WelcomeFrame Read(ref PayloadReader reader) => new(
        reader.U16("version"), NonNegative(ref reader, "max frame bytes"), NonNegative(ref reader, "max in-flight"),
        reader.U64("session id"), NonNegative(ref reader, "max prompt tokens"), NonNegative(ref reader, "max tokens"));

    internal static int NonNegative(ref PayloadReader reader, string field)
    {
        var value = reader.U32(field);
        if (value > int.MaxValue)
        {
            reader.Fail(field, 0, $"{value} is above {int.MaxValue}");
        }

        return (int)value;
    }
}

/// <summary>ERROR: a request (or, with request id 0, the connection) failed.</summary>
public sealed record ErrorFrame(ErrorCode Code, string Message, TimeSpan? RetryAfter = null) : FramePayload
{
    public override FrameType Type => FrameType.Error;

    internal override int MeasurePayload() => 2 + 4 + PayloadWriter.StringSize(Message);

    internal override void WritePayload(ref PayloadWriter writer)
    {
        writer.U16((ushort)Code);
        writer.U32(RetryAfter is { } r ? (uint)Math.Clamp(Math.Ceiling(r.TotalMilliseconds), 1, uint.MaxValue) : 0);
        writer.String(Message);
    }

    internal static ErrorFrame Read(ref PayloadReader reader)
    {
        var code = reader.U16("code");
        if (code is 0 or > (ushort)ErrorCode.ShuttingDown)
        {
            reader.Fail("code", 0, $"unknown error code {code}");
        }

        var retry = reader.U32("retry after ms");
        var message = reader.String("message");
        return new ErrorFrame((ErrorCode)code, message, retry == 0 ? null : TimeSpan.FromMilliseconds(retry));
    }
}

/// <summary>GOAWAY: the server is closing this connection after a drain.</summary>
public sealed record GoAwayFrame(uint LastRequestId, TimeSpan Drain, string Reason) : FramePayload
{
    public override FrameType Type => FrameType.GoAway;

    internal override int MeasurePayload() => 4 + 4 + PayloadWriter.StringSize(Reason);

    internal override void WritePayload(ref PayloadWriter writer)
    {
        writer.U32(LastRequestId);
        writer.U32((uint)Math.Clamp(Drain.TotalMilliseconds, 0, uint.MaxValue));
        writer.String(Reason);
    }

    internal static GoAwayFrame Read(ref PayloadReader reader) =>
        new(reader.U32("last request id"), TimeSpan.FromMilliseconds(reader.U32("drain ms")), reader.String("reason"));
}

/// <summary>CANCEL, and the client's STATS request: no payload; STATS may carry the detailed flag.</summary>
public sealed record EmptyFrame(FrameType FrameKind, byte Flags = 0) : FramePayload
{
    /// <summary>STATS request flag: detailed (admin keys only).</summary>
    public const byte StatsDetailed = 0x01;

    public override FrameType Type => FrameKind;

    internal override byte HeaderFlags => Flags;

    internal override int MeasurePayload() => 0;

    internal override void WritePayload(ref PayloadWriter writer)
    {
    }
}

/// <summary>PING and PONG: an opaque value the peer echoes.</summary>
public sealed record PingFrame(FrameType FrameKind, ulong Opaque) : FramePayload
{
    public override FrameType Type => FrameKind;

    internal override int MeasurePayload() => 8;

    internal override void WritePayload(ref PayloadWriter writer) => writer.U64(Opaque);
}
