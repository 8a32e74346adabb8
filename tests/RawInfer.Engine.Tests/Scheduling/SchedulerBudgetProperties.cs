using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RawInfer.Engine.Scheduling;

namespace RawInfer.Engine.Tests.Scheduling;

/// <summary>
/// The per-step budget rules on random workloads, checked after every schedule: the token, sequence and prefill
/// budgets hold, every running decode is served before a prefill chunk takes tokens, chunks respect the per-request
/// cap, and every request finishes (no starvation) with the allocator sound and empty at the end.
/// </summary>
public class SchedulerBudgetProperties
{
    [Property(MaxTest = 300)]
    public Property Budgets_hold_decodes_come_first_and_everyone_finishes() =>
        Prop.ForAll(Arb.From(Scenarios), scenario => Run(scenario));

    public sealed record RequestSpec(int PromptLength, int MaxTokens, int Priority, int ArrivalStep, int Salt);

    public sealed record Scenario(
        int MaxBatchedTokens, int MaxRunning, int MaxPrefill, int Threshold, int BlockSize, int NumBlocks,
        SchedulingPolicy Policy, BatchingMode Batching, RequestSpec[] Requests)
    {
        public override string ToString() =>
            $"batched {MaxBatchedTokens}, running {MaxRunning}, prefill {MaxPrefill}, threshold {Threshold}, blocks {NumBlocks}x{BlockSize}, "
            + $"{Policy}, {Batching}, requests [{string.Join("; ", Requests.Select(r => r.ToString()))}]";
    }

    private static Gen<Scenario> Scenarios =>
        from batched in Gen.Choose(1, 48)
        from running in Gen.Choose(1, 10)
        from prefill in Gen.Frequency((1, Gen.Constant(0)), (3, Gen.Choose(1, 40)))
        from threshold in Gen.Frequency((1, Gen.Constant(0)), (1, Gen.Choose(1, 12)))
        from blockSize in Gen.Choose(1, 6)
        from numBlocks in Gen.Choose(6, 40)
        from policy in Gen.Elements(SchedulingPolicy.Fcfs, SchedulingPolicy.Priority)
        from batching in Gen.Frequency((4, Gen.Constant(BatchingMode.Continuous)), (1, Gen.Constant(BatchingMode.Static)), (1, Gen.Constant(BatchingMode.StaticPadded)))
        from count in Gen.Choose(1, 12)
        from requests in Gen.ArrayOf(Request(blockSize * numBlocks), count)
        select new Scenario(batched, running, prefill, threshold, blockSize, numBlocks, policy, batching, requests);

    /// <summary>A request that fits the pool on its own (submit refuses any other).</summary>
    private static Gen<RequestSpec> Request(int poolTokens) =>
        from prompt in Gen.Choose(1, Math.Max(1, Math.Min(30, poolTokens - 1)))
        from maxTokens in Gen.Choose(1, Math.Max(1, Math.Min(12, poolTokens - prompt)))
        from priority in Gen.Choose(0, 3)
        from arrival in Gen.Choose(0, 8)
        from salt in Gen.Choose(0, 3)
        select new RequestSpec(prompt, maxTokens, priority, arrival, salt);

    private static bool Run(Scenario s)
    {
        var options = new EngineOptions
        {
            MaxBatchedTokens = s.MaxBatchedTokens, MaxRunningSequences = s.MaxRunning, MaxPrefillTokensPerStep = s.MaxPrefill,
            LongPrefillTokenThreshold = s.Threshold, BlockSize = s.BlockSize, Policy = s.Policy, Batching = s.Batching,
        };
        var harness = new SchedulerHarness(options, s.NumBlocks);
        var scheduler = harness.Scheduler;
        var continuous = s.Batching == BatchingMode.Continuous;
        var totalWork = s.Requests.Sum(r => r.PromptLength + r.MaxTokens);
        var maxSteps = 50 + (totalWork * 20);
        for (var step = 0; step < maxSteps && harness.Finished.Count < s.Requests.Length; step++)
        {
            foreach (var spec in s.Requests.Where(r => r.ArrivalStep == step))
            {
                // Small salts make prompts share prefixes, so prefix hits happen too.
                var prompt = Enumerable.Range(0, spec.PromptLength).Select(k => 3 + ((k * (spec.Salt + 1)) % 7)).ToArray();
                harness.Submit(prompt, spec.MaxTokens, spec.Priority);
            }

            var runningBefore = scheduler.Running.ToHashSet();
            harness.Schedule();
            var work = scheduler.Scheduled;
            Assert.True(work.Sum(w => w.NumTokens) <= s.MaxBatchedTokens, $"token budget, step {step}");
            Assert.True(work.Count <= s.MaxRunning, $"sequence budget, step {step}");
            Assert.Equal(work.Count, work.Select(w => w.Request).Distinct().Count());
            var prefillTokens = 0;
            var runningRows = work.Where(w => !w.Request.IsPadRow).ToList();
            foreach (var w in work.Where(w => w.Request.IsPadRow))
            {
                // A padded batch's finished row recomputes its last position, and only while the batch runs.
                Assert.Equal(BatchingMode.StaticPadded, s.Batching);
                Assert.Equal(RequestStatus.Finished, w.Request.Status);
                Assert.Equal((w.Request.NumTokens - 1, 1), (w.StartPosition, w.NumTokens));
                Assert.NotEmpty(runningRows);
            }

            foreach (var w in runningRows)
            {
                Assert.Equal(RequestStatus.Running, w.Request.Status);
                Assert.Equal(w.Request.NumComputedTokens, w.StartPosition);
                Assert.InRange(w.NumTokens, 1, w.Request.NumTokens - w.StartPosition);
                var isPrefill = w.Request.NumTokens - w.StartPosition > 1;
                prefillTokens += isPrefill ? w.NumTokens : 0;
                if (continuous && isPrefill && s.Threshold > 0)
                {
                    Assert.True(w.NumTokens <= s.Threshold, $"per-request cap, step {step}");
                }
            }

            if (continuous && s.MaxPrefill > 0)
            {
                Assert.True(prefillTokens <= s.MaxPrefill, $"prefill budget: {prefillTokens} > {s.MaxPrefill}, step {step}");
            }

            // Decodes first: when every running decode fits the token budget, every one of them runs this step. (A
            // static batch may admit a one-token prompt past the budget this step: it starts in the next.)
            var decodes = scheduler.Running.Where(r => r.NumTokens - r.NumComputedTokens == 1
                && (continuous || runningBefore.Contains(r))).ToList();
            if (decodes.Count <= s.MaxBatchedTokens)
            {
                var scheduled = work.Select(w => w.Request).ToHashSet();
                Assert.All(decodes, d => Assert.Contains(d, scheduled));
            }

            harness.Complete();
            harness.Blocks.CheckInvariants();
            Assert.True(scheduler.Running.Count > 0 || scheduler.PadRows.Count == 0, $"pad rows outlived their batch, step {step}");
        }

        Assert.Equal(s.Requests.Length, harness.Finished.Count); // nobody starved
        Assert.Empty(scheduler.Running);
        Assert.Empty(scheduler.PadRows);
        Assert.Empty(scheduler.Waiting);
        Assert.Equal(0, harness.Blocks.NumSequences);
        Assert.Equal(harness.Blocks.TotalBlocks, harness.Blocks.FreeBlocks);
        return true;
    }
}
