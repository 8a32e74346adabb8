namespace RawInfer.Engine;

// Warm-up: the KV cache committed if asked, then forward passes on dummy rows, before the first request, on the engine thread.
public sealed partial class InferenceEngine
{
    /// <summary>Rows of the multi-row decode pass of a warm-up round (and the blocks a round uses).</summary>
    private const int WarmUpDecodeRows = 4;

    /// <summary>
    /// Runs <see cref="EngineOptions.WarmUpRounds"/> rounds through the runner, bypassing the scheduler: a prefill
    /// chunk in block 0, a one-row decode after it, then a decode of up to four sequences (block 0's and one new
    /// token in each of blocks 1..3). No request exists yet, so those blocks are free, and no reader can see what
    /// is written there: a block's slots are written by the pass that extends a sequence into them before any
    /// attention reads them. Nothing is registered with the allocator, so no prefix hit can find these rows.
    /// </summary>
    private void WarmUp()
    {
        if (_options.PrefaultKvCache)
        {
            _runner.PrefaultKvCache();
        }

        var rounds = _options.WarmUpRounds;
        if (rounds == 0)
        {
            return;
        }

        var blockSize = _options.BlockSize;
        // the prefill leaves one slot of block 0 for the decode after it, and fits the step and the context
        var prefill = Math.Min(Math.Min(blockSize, _maxSeqLen) - 1, _options.MaxBatchedTokens);
        var decodeRows = Math.Min(Math.Min(WarmUpDecodeRows, _options.MaxRunningSequences),
            Math.Min(_scheduler.Blocks.TotalBlocks, _options.MaxBatchedTokens));
        for (var round = 0; round < rounds; round++)
        {
            if (prefill > 0)
            {
                _batch.Clear();
                AddWarmUpSequence(0, block: 0, start: 0, count: prefill);
                RunWarmUpBatch(1);
            }

            _batch.Clear();
            AddWarmUpSequence(0, block: 0, start: prefill, count: 1);
            RunWarmUpBatch(1);

            if (decodeRows > 1)
            {
                _batch.Clear();
                AddWarmUpSequence(0, block: 0, start: prefill, count: 1);
                for (var s = 1; s < decodeRows; s++)
                {
                    AddWarmUpSequence(s, block: s, start: 0, count: 1);
                }

                RunWarmUpBatch(decodeRows);
            }
        }
    }

    /// <summary>Appends sequence <paramref name="s"/>: tokens at positions [start, start + count) of a one-block sequence.</summary>
    private void AddWarmUpSequence(int s, int block, int start, int count)
    {
        var batch = _batch;
        var row = batch.NumTokens;
        batch.QueryStart[s] = row;
        for (var k = 0; k < count; k++)
        {
            batch.TokenIds[row + k] = (start + k + 1) % _vocabSize;
            batch.Positions[row + k] = start + k;
            batch.SlotMapping[row + k] = (block * _options.BlockSize) + start + k;
        }

        batch.BlockTable(s)[0] = block;
        batch.ContextLengths[s] = start + count;
        batch.NumTokens = row + count;
        batch.LogitRows[batch.NumLogitRows++] = row + count - 1;
    }

    private void RunWarmUpBatch(int sequences)
    {
        var batch = _batch;
        batch.NumSequences = sequences;
        batch.QueryStart[sequences] = batch.NumTokens;
        _runner.Execute(batch, _logits.AsSpan(0, batch.NumLogitRows * _vocabSize));
    }
}
