namespace RawInfer.Engine.Tests.Engine;

/// <summary>
/// A burst of long prompts arriving while requests decode: each step carries at most the prefill budget of prompt
/// tokens beside its decode rows (so the decodes are delayed by a bounded amount), prompts are chunked across steps,
/// and every output is still the request's solo output.
/// </summary>
public class PrefillBudgetTests
{
    [Theory]
    [InlineData(32, 0)]
    [InlineData(48, 10)] // with a per-request cap too: several prompts progress in the same step
    public async Task A_prompt_burst_is_spread_over_steps_within_the_prefill_budget(int maxPrefill, int threshold)
    {
        var runner = new FakeRunner();
        var maxPrefillRows = 0;
        var maxChunk = 0;
        var stepsWithPrefillAndDecodes = 0;
        using var burstIn = new ManualResetEventSlim();
        var passes = 0;
        runner.BeforeExecute = batch =>
        {
            // the second pass waits for the burst, so the decoders cannot finish first (steps take microseconds)
            if (++passes == 2)
            {
                Assert.True(burstIn.Wait(TimeSpan.FromSeconds(30)), "the burst was not submitted within 30 s");
            }

            int prefill = 0, decodes = 0;
            for (var s = 0; s < batch.NumSequences; s++)
            {
                var rows = batch.QueryStart[s + 1] - batch.QueryStart[s];
                prefill += rows > 1 ? rows : 0;
                decodes += rows == 1 ? 1 : 0;
                maxChunk = Math.Max(maxChunk, rows);
            }

            maxPrefillRows = Math.Max(maxPrefillRows, prefill);
            stepsWithPrefillAndDecodes += prefill > 0 && decodes > 0 ? 1 : 0;
        };
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 512, BlockSize = 8, MaxPrefillTokensPerStep = maxPrefill, LongPrefillTokenThreshold = threshold,
        });
        var ct = TestContext.Current.CancellationToken;
        var decoders = Enumerable.Range(0, 4).Select(i => new GenerationRequest { Prompt = $"d{i}", MaxTokens = 80, IgnoreEos = true }).ToList();
        var decoding = decoders.Select(r => engine.GenerateAsync(r, ct)).ToList();
        var random = new Random(5);
        var prompts = Enumerable.Range(0, 6).Select(i => new GenerationRequest
        {
            Prompt = new string([.. Enumerable.Range(0, 120 + (i * 7)).Select(_ => CharTokenizer.Alphabet[random.Next(CharTokenizer.Alphabet.Length)])]),
            MaxTokens = 10,
            IgnoreEos = true,
        }).ToList();
        var prefilling = prompts.Select(r => engine.GenerateAsync(r, ct)).ToList();
        burstIn.Set();

        var all = decoders.Concat(prompts).ToList();
        var results = await Task.WhenAll(decoding.Concat(prefilling));
        for (var i = 0; i < all.Count; i++)
        {
            Assert.Equal(EngineHarness.Reference(all[i]), results[i].TokenIds);
        }

        Assert.InRange(maxPrefillRows, 1, maxPrefill);
        Assert.True(threshold == 0 || maxChunk <= threshold, $"a chunk of {maxChunk} rows passed the per-request cap");
        Assert.True(stepsWithPrefillAndDecodes > 0, "prompt chunks shared steps with decodes");
        await EngineHarness.StopAndAuditAsync(engine);
    }
}
