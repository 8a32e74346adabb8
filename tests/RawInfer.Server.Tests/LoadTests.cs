using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using RawInfer.Engine;
using RawInfer.Server;

namespace RawInfer.Server.Tests;

/// <summary>
/// Load on stories260K: 1,000 concurrent streams over 100 connections, and 5,000 idle connections. Figures go to
/// the test output (run with `-method "*LoadTests*"` and read the report); nothing here asserts on time.
/// </summary>
public class LoadTests
{
    [Fact]
    public async Task A_thousand_concurrent_streams_over_a_hundred_connections_all_complete_with_every_token_in_order()
    {
        const int connections = 100;
        const int perConnection = 10;
        await using var h = new ServerHarness(
            new ServerOptions { MaxInFlightPerKey = 2000 },
            new EngineOptions { MaxRunningSequences = 256, MaxQueuedRequests = 2000 });
        string[] prompts = ["Once upon a time", "Tom had a dog", "The sun was", "One day", "Lily liked", "A big bird", "The cat", "Sam went", "Mom said", "In the park"];
        var reference = new List<int[]>();
        foreach (var prompt in prompts)
        {
            var r = await h.Engine.GenerateAsync(new GenerationRequest { Prompt = prompt, MaxTokens = 32, IgnoreEos = true }, ServerHarness.Timeout());
            reference.Add([.. r.TokenIds]);
        }

        var clients = await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => h.ConnectAsync()));
        var clock = Stopwatch.StartNew();
        var tasks = new List<Task<(int Index, int MaxTokens, List<int> Ids, DoneFrame? Done)>>();
        for (var c = 0; c < connections; c++)
        {
            for (var k = 0; k < perConnection; k++)
            {
                var index = (c * perConnection) + k;
                tasks.Add(RunAsync(clients[c], index, prompts[index % prompts.Length], 16 + (index % 17)));
            }
        }

        var results = await Task.WhenAll(tasks);
        clock.Stop();
        long tokens = 0;
        foreach (var (index, maxTokens, ids, done) in results)
        {
            Assert.NotNull(done);
            Assert.Equal(reference[index % prompts.Length][..maxTokens], ids);
            tokens += ids.Count;
        }

        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{results.Length} streams over {connections} connections: {clock.Elapsed.TotalSeconds:F2} s, {tokens} tokens, {tokens / clock.Elapsed.TotalSeconds:F0} tokens/s"));
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }

        await h.WaitForIdleEngineAsync();
    }

    [Fact]
    public async Task Five_thousand_idle_connections_are_held_and_a_newcomer_is_still_served()
    {
        const int count = 5000;
        await using var h = new ServerHarness();
        var hello = FrameWriter.ToArray(0, ServerHarness.Hello(ServerHarness.ClientKey));
        var sockets = new Socket[count];
        var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);
        var workingSetBefore = Process.GetCurrentProcess().WorkingSet64;
        var clock = Stopwatch.StartNew();
        for (var batch = 0; batch < count; batch += 250)
        {
            await Task.WhenAll(Enumerable.Range(batch, Math.Min(250, count - batch)).Select(async i =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(h.EndPoint, ServerHarness.Timeout());
                await socket.SendAsync(hello, SocketFlags.None, ServerHarness.Timeout());
                Assert.IsType<WelcomeFrame>((await ServerHarness.ReadFrameAsync(socket))?.Payload);
                sockets[i] = socket;
            }));
        }

        clock.Stop();
        Assert.Equal(count, h.Server.ConnectionCount);
        var memoryAfter = GC.GetTotalMemory(forceFullCollection: true);
        var workingSetAfter = Process.GetCurrentProcess().WorkingSet64;

        await using (var newcomer = await h.ConnectAsync())
        {
            Assert.Equal(4, (await newcomer.CompleteAsync(new SubmitFrame { Prompt = "Hi", MaxTokens = 4 }, ServerHarness.Timeout())).Done.Usage.CompletionTokens);
        }

        TestContext.Current.TestOutputHelper?.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{count} idle connections opened and authenticated in {clock.Elapsed.TotalSeconds:F2} s; managed heap +{(memoryAfter - memoryBefore) / count} B per connection, " +
            $"working set +{(workingSetAfter - workingSetBefore) / count} B per connection (both sides of the socket: the test's client sockets are included)"));

        foreach (var socket in sockets)
        {
            socket.Dispose();
        }

        while (h.Server.ConnectionCount > 0)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }

    private static async Task<(int, int, List<int>, DoneFrame?)> RunAsync(RawInferClient client, int index, string prompt, int maxTokens)
    {
        var ids = new List<int>();
        DoneFrame? done = null;
        await foreach (var chunk in client.StreamAsync(new SubmitFrame { Prompt = prompt, MaxTokens = maxTokens, IgnoreEos = true }, ServerHarness.Timeout(120)))
        {
            ids.AddRange(chunk.TokenIds);
            done ??= chunk.Done;
        }

        return (index, maxTokens, ids, done);
    }
}
