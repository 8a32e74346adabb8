namespace RawInfer.Safety.Audit;

/// <summary>How prompts and outputs appear in the audit trail.</summary>
public enum ContentRetention
{
    /// <summary>Only SHA-256 and lengths (default).</summary>
    HashOnly,

    /// <summary>Also the text, AES-GCM encrypted under the key's data key (crypto-shredded by forget).</summary>
    Encrypted,
}

/// <summary>Settings of an <see cref="AuditLog"/>.</summary>
public sealed record AuditLogOptions
{
    /// <summary>A segment is closed and a new one started once it reaches this size.</summary>
    public long SegmentBytes { get; init; } = 8L << 20;

    /// <summary>A checkpoint line is written after every this many records.</summary>
    public int CheckpointEvery { get; init; } = 1000;

    /// <summary>When the middle of the log is damaged: set the damaged files aside and start a new chain (audited), instead of refusing to open.</summary>
    public bool StartNewChainOnDamage { get; init; }

    public ContentRetention Retention { get; init; } = ContentRetention.HashOnly;

    /// <summary>The data-key file for encrypted content; default <c>DIR/datakeys.json</c>. Not part of the chain.</summary>
    public string? DataKeyFile { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(SegmentBytes, AuditFormat.HeaderSize + AuditFormat.MinRecordSize, nameof(SegmentBytes));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(CheckpointEvery, nameof(CheckpointEvery));
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
    }
}
