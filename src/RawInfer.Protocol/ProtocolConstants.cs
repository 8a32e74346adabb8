namespace RawInfer.Protocol;

/// <summary>Fixed numbers of the wire protocol (docs/protocol.md).</summary>
public static class ProtocolConstants
{
    /// <summary>HELLO's magic: the bytes "RINF" read as a little-endian u32.</summary>
    public const uint Magic = 0x464E4952;

    /// <summary>The protocol version this codec speaks.</summary>
    public const ushort Version = 1;

    /// <summary>Bytes of the fixed frame header: length, type, flags, reserved, request id.</summary>
    public const int HeaderSize = 12;

    /// <summary>Largest payload accepted before authentication (one HELLO).</summary>
    public const int HandshakeMaxPayloadBytes = 4096;

    /// <summary>Longest API key in HELLO, in bytes.</summary>
    public const int MaxApiKeyBytes = 512;

    /// <summary>Longest client name in HELLO, in UTF-8 bytes.</summary>
    public const int MaxClientNameBytes = 256;

    /// <summary>Most top log-probabilities per position a SUBMIT may ask for.</summary>
    public const int MaxTopLogprobs = 20;
}

/// <summary>Frame types (the header's type byte).</summary>
public enum FrameType : byte
{
    Hello = 1,
    Welcome = 2,
    Submit = 3,
    Tokens = 4,
    Done = 5,
    Error = 6,
    Cancel = 7,
    Stats = 8,
    Ping = 9,
    Pong = 10,
    GoAway = 11,
    Admin = 12,
    AdminResult = 13,
}

/// <summary>What an ADMIN frame asks for (its first payload byte). Admin keys only; client keys get FORBIDDEN.</summary>
public enum AdminOperation : byte
{
    /// <summary>Audit records by key id, request id and time range.</summary>
    AuditQuery = 1,

    /// <summary>Re-read the API key file.</summary>
    ReloadKeys = 2,

    /// <summary>Re-read the deny-list file.</summary>
    ReloadDenyList = 3,

    /// <summary>End a key's suspension now.</summary>
    LiftSuspension = 4,
}

/// <summary>Error codes a client can act on (ERROR frames).</summary>
public enum ErrorCode : ushort
{
    /// <summary>The request is invalid; the message names the field and the limit.</summary>
    BadRequest = 1,

    /// <summary>The API key is unknown; the connection closes.</summary>
    Unauthorized = 2,

    /// <summary>The key's role may not do this.</summary>
    Forbidden = 3,

    /// <summary>The key's rate limit is spent; retry after the hint.</summary>
    RateLimited = 4,

    /// <summary>The server or an in-flight limit is full; retry after the hint.</summary>
    Overloaded = 5,

    /// <summary>A request or output guard refused.</summary>
    DeniedByPolicy = 6,

    /// <summary>The request's deadline passed.</summary>
    DeadlineExceeded = 7,

    /// <summary>The client cancelled the request.</summary>
    Cancelled = 8,

    /// <summary>A server-side failure.</summary>
    Internal = 9,

    /// <summary>The peer broke the protocol; the connection closes.</summary>
    ProtocolViolation = 10,

    /// <summary>The server is draining.</summary>
    ShuttingDown = 11,
}

/// <summary>Why a request finished normally (DONE frames).</summary>
public enum DoneReason : byte
{
    /// <summary>EOS or a stop token id.</summary>
    Stop = 0,

    /// <summary>A stop string (not delivered).</summary>
    StopString = 1,

    /// <summary>Max tokens generated or the model's context is full.</summary>
    Length = 2,
}

/// <summary>SUBMIT header flags.</summary>
[Flags]
public enum SubmitFlags : byte
{
    None = 0,
    Stream = 0x01,
    PromptIsTokenIds = 0x02,
    AddBos = 0x04,
    IgnoreEos = 0x08,
    HasSeed = 0x10,
}
