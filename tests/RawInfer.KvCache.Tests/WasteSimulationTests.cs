using Xunit;

namespace RawInfer.KvCache.Tests;

/// <summary>
/// Waste on a realistic serving mix: prompts of 20–2,000 tokens and outputs of 1–1,000, admitted while the pool
/// allows (watermark 1%), one token appended per step to every running sequence, the newest preempted when an
/// append does not fit. The time-averaged waste is written to the test output.
/// </summary>
public class WasteSimulationTests(ITestOutputHelper output)
{
    [Fact]
    public void Realistic_mix_wastes_under_one_partly_filled_block_per_sequence()
    {
        const int blockSize = 16, numBlocks = 20_000, maxRunning = 256, totalRequests = 1_500;
        var random = new Random(20_240_601);
        var manager = new BlockManager(numBlocks, blockSize, KvCacheSizing.DefaultWatermarkBlocks(numBlocks));
        var waiting = new Queue<(long Id, int[] Prompt, int Output)>();
        for (var id = 0L; id < totalRequests; id++)
        {
            var prompt = new int[random.Next(20, 2_001)];
            for (var i = 0; i < prompt.Length; i++)
            {
                prompt[i] = random.Next(32_000);
            }

            waiting.Enqueue((id, prompt, random.Next(1, 1_001)));
        }

        var running = new List<(long Id, int[] Prompt, int Output, int Generated)>();
        double wasteSum = 0, peakWaste = 0;
        long steps = 0, preemptions = 0;
        while (waiting.Count > 0 || running.Count > 0)
        {
            while (waiting.Count > 0 && running.Count < maxRunning && manager.CanAllocate(waiting.Peek().Prompt))
            {
                var (id, prompt, outputTokens) = waiting.Dequeue();
                manager.Allocate(id, prompt);
                running.Add((id, prompt, outputTokens, 0));
            }

            for (var i = 0; i < running.Count; i++)
            {
                var r = running[i];
                while (!manager.CanAppend(r.Id, 1))
                {
                    var victim = running[^1];
                    manager.Free(victim.Id);
                    waiting.Enqueue((victim.Id, victim.Prompt, victim.Output));
                    running.RemoveAt(running.Count - 1);
                    preemptions++;
                }

                if (i >= running.Count)
                {
                    break;
                }

                manager.Append(r.Id, [random.Next(32_000)]);
                running[i] = r with { Generated = r.Generated + 1 };
            }

            // Sample after the step's appends, before finished sequences leave.
            var unused = manager.AllocatedSlots - manager.StoredTokens;
            Assert.True(unused < (long)blockSize * manager.NumSequences, $"step {steps}: {unused} unused slots");
            wasteSum += manager.Waste;
            peakWaste = Math.Max(peakWaste, manager.Waste);
            steps++;

            for (var i = running.Count - 1; i >= 0; i--)
            {
                if (running[i].Generated >= running[i].Output)
                {
                    manager.Free(running[i].Id);
                    running.RemoveAt(i);
                }
            }
        }

        manager.CheckInvariants();
        Assert.Equal(numBlocks, manager.FreeBlocks);
        var meanWaste = wasteSum / steps;
        output.WriteLine(
            $"KV waste, {totalRequests} requests (prompts 20-2000, outputs 1-1000), {numBlocks} blocks x {blockSize}: "
                + $"mean {meanWaste:P2}, peak {peakWaste:P2} over {steps} steps, {preemptions} preemptions");
        Assert.True(meanWaste < 0.04, $"mean waste {meanWaste:P2}");
    }
}
