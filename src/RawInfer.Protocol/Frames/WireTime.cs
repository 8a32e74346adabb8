namespace RawInfer.Protocol;

/// <summary>
/// Instants on the wire: <c>i64</c> microseconds since the Unix epoch (UTC). Optional instants use −1 for "none", so
/// a present instant is never before 1970 (the encoder clamps earlier ones to the epoch); every other out-of-range
/// value is a protocol violation, which keeps the encoding canonical (decode then encode gives the same bytes).
/// </summary>
internal static class WireTime
{
    /// <summary>Wire value of an absent optional instant.</summary>
    public const long None = -1;

    // DateTimeOffset's range in whole microseconds from the epoch (the epoch's ticks are a multiple of 10).
    private static readonly long MinMicros = (DateTimeOffset.MinValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
    private static readonly long MaxMicros = (DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    /// <summary>Whole microseconds since the epoch, rounded towards the past.</summary>
    public static long ToMicros(DateTimeOffset instant) =>
        Math.DivRem(instant.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks, 10, out var rest) - (rest < 0 ? 1 : 0);

    /// <summary>An optional instant: −1 when absent, else whole microseconds (rounded down), clamped to the epoch or later.</summary>
    public static long ToOptionalMicros(DateTimeOffset? instant) => instant is { } value ? Math.Max(ToMicros(value), 0) : None;

    public static DateTimeOffset Read(ref PayloadReader reader, string field)
    {
        var micros = reader.I64(field);
        if (micros < MinMicros || micros > MaxMicros)
        {
            reader.Fail(field, reader.Position - 8, $"{micros} µs from the epoch is outside the representable range");
        }

        return DateTimeOffset.UnixEpoch.AddTicks(micros * 10);
    }

    public static DateTimeOffset? ReadOptional(ref PayloadReader reader, string field)
    {
        var micros = reader.I64(field);
        if (micros == None)
        {
            return null;
        }

        if (micros < 0 || micros > MaxMicros)
        {
            reader.Fail(field, reader.Position - 8, $"{micros} µs from the epoch: must be −1 (none) or 0..{MaxMicros}");
        }

        return DateTimeOffset.UnixEpoch.AddTicks(micros * 10);
    }

    /// <summary>A <c>u8</c> that must be 0 or 1.</summary>
    public static bool ReadBool(ref PayloadReader reader, string field)
    {
        var value = reader.U8(field);
        if (value > 1)
        {
            reader.Fail(field, reader.Position - 1, $"{value} is not 0 or 1");
        }

        return value == 1;
    }
}
