namespace RawInfer.Engine.Runner;

/// <summary>
/// One engine step's work for the model: the new tokens of every scheduled sequence, flattened into rows.
/// Sequence s owns rows QueryStart[s] .. QueryStart[s+1]-1; a decode step is one row, a prefill chunk many.
/// Buffers are allocated once for the engine's limits and refilled every step (no allocation per step).
/// </summary>
public sealed partial class ForwardBatch
{
    public ForwardBatch(int maxTokens, int maxSequences, int maxBlocksPerSequence)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSequences);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBlocksPerSequence);
        MaxTokens = maxTokens;
        MaxSequences = maxSequences;
        MaxBlocksPerSequence = maxBlocksPerSequence;
        TokenIds = new int[maxTokens];
        Positions = new int[maxTokens];
        SlotMapping = new int[maxTokens];
        QueryStart = new int[maxSequences + 1];
        ContextLengths = new int[maxSequences];
        BlockTables = new int[checked(maxSequences * maxBlocksPerSequence)];
        LogitRows = new int[maxSequences];
    }

    public int MaxTokens { get; }

    public int MaxSequences { get; }

    public int MaxBlocksPerSequence { get; }

    /// <summary>Rows filled this step.</summary>
    public int NumTokens { get; set; }

    /// <summary>Sequences scheduled this step.</summary>
    public int NumSequences { get; set; }

    /// <summary>(maxTokens) token id of each row.</summary>
    public int[] TokenIds { get; }

    /// <summary>(maxTokens) absolute position of each row within its sequence.</summary>
    public int[] Positions { get; }

    /// <summary>(maxTokens) KV slot (physical block × blockSize + offset) each row's K/V is written to.</summary>
    public int[] SlotMapping { get; }

    /// <summary>(maxSequences + 1) first row of each sequence; QueryStart[NumSequences] == NumTokens.</summary>
    public int[] QueryStart { get; }

    /// <summary>(maxSequences) tokens in each sequence's KV once this step's rows are written.</summary>
    public int[] ContextLengths { get; }

    /// <summary>(maxSequences, maxBlocksPerSequence) each sequence's block table (logical → physical block).</summary>
    public int[] BlockTables { get; }

    /// <summary>(maxSequences) rows whose logits the engine samples from, in order; NumLogitRows of them.</summary>
    public int[] LogitRows { get; }

    /// <summary>Rows that need logits this step (a sequence mid-prefill needs none).</summary>
    public int NumLogitRows { get; set; }

    /// <summary>Sequence s's block table row.</summary>
    public Span<int> BlockTable(int sequence) =>
        BlockTables.AsSpan(sequence * MaxBlocksPerSequence, MaxBlocksPerSequence);

    public void Clear()
    {
        NumTokens = 0;
        NumSequences = 0;
        NumLogitRows = 0;
        QueryStart[0] = 0;
    }
}
