namespace RawInfer.Protocol.Tests;

/// <summary>One valid frame of every type and shape, with the direction it travels.</summary>
internal static class SampleFrames
{
    public static IReadOnlyList<(string Name, uint RequestId, FramePayload Payload, bool FromServer)> All { get; } =
    [
        ("hello", 0, new HelloFrame(ProtocolConstants.Version, "secret-key"u8.ToArray(), "tests"), false),
        ("hello-empty-key", 0, new HelloFrame(ProtocolConstants.Version, ReadOnlyMemory<byte>.Empty, ""), false),
        ("welcome", 0, new WelcomeFrame(1, 1 << 20, 64, 0xDEADBEEF_00000001, 1024, 256), true),
        ("submit-text", 1, new SubmitFrame { Prompt = "Once upon a time", MaxTokens = 32, StopStrings = [".", "é☃"] }, false),
        ("submit-ids", 7, new SubmitFrame
        {
            PromptTokenIds = [1, 403, 407], Stream = false, AddBos = false, IgnoreEos = true, Temperature = 0.8f, TopK = 40,
            TopP = 0.9f, MinP = 0.05f, RepetitionPenalty = 1.1f, RepetitionWindow = 32, PresencePenalty = 0.5f,
            FrequencyPenalty = -0.25f, Seed = 42, Priority = -3, Deadline = TimeSpan.FromSeconds(2), TopLogprobs = 5,
            StopTokenIds = [13, 2],
        }, false),
        ("tokens", 1, new TokensFrame([301, 302], " upon"), true),
        ("tokens-logprobs", 2, new TokensFrame([5], "a", [new PositionLogprobEntry(new(5, -0.1f), [new(5, -0.1f), new(9, -2.5f)])]), true),
        ("tokens-empty", 3, new TokensFrame([], ""), true),
        ("done", 1, new DoneFrame(DoneReason.Length, null, new UsageEntry(5, 32, 0, 1, TimeSpan.FromMilliseconds(1.5), TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(1))), true),
        ("done-stop-string", 4, new DoneFrame(DoneReason.StopString, "matched '.'", new UsageEntry(3, 4, 2, 0, TimeSpan.Zero, null, TimeSpan.FromMilliseconds(3))), true),
        ("error", 9, new ErrorFrame(ErrorCode.Overloaded, "waiting queue full", TimeSpan.FromMilliseconds(250)), true),
        ("error-connection", 0, new ErrorFrame(ErrorCode.ProtocolViolation, "bad frame"), true),
        ("cancel", 1, new EmptyFrame(FrameType.Cancel), false),
        ("stats-request", 11, new EmptyFrame(FrameType.Stats, EmptyFrame.StatsDetailed), false),
        ("stats-reply", 11, new StatsFrame { RunningRequests = 3, KvBlocksTotal = 100, GeneratedTokens = 12345, Uptime = TimeSpan.FromSeconds(5), PrefixCacheHitRate = 0.25 }, true),
        ("ping", 0, new PingFrame(FrameType.Ping, 77), false),
        ("pong", 0, new PingFrame(FrameType.Pong, 77), true),
        ("goaway", 0, new GoAwayFrame(12, TimeSpan.FromSeconds(10), "shutting down"), true),
        ("stats-reply-suspensions", 12, new StatsFrame
        {
            Connections = 2, Suspensions = [new SuspensionEntry("client-1", new DateTimeOffset(2026, 11, 28, 1, 5, 0, TimeSpan.Zero), "PolicyDenial=3")],
        }, true),
        ("admin-audit-query", 13, AdminFrame.QueryAudit(
            "client-1", "c7-r1", new DateTimeOffset(2026, 11, 28, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 11, 28, 1, 0, 0, TimeSpan.Zero), 50), false),
        ("admin-reload-keys", 14, AdminFrame.ReloadKeys(), false),
        ("admin-lift", 15, AdminFrame.LiftSuspension("client-1"), false),
        ("admin-result-audit", 13, new AdminResultFrame
        {
            Operation = AdminOperation.AuditQuery, MatchedRecords = 5, Truncated = true,
            Records =
            [
                new AuditRecordEntry(41, new DateTimeOffset(2026, 11, 28, 0, 30, 0, TimeSpan.Zero).AddTicks(12340), "RequestAdmitted", "client-1", "127.0.0.1", "c7-r1", "prompt_tokens=4; max_tokens=16"),
                new AuditRecordEntry(42, new DateTimeOffset(2026, 11, 28, 0, 30, 1, TimeSpan.Zero), "LogOpened", null, null, null, ""),
            ],
        }, true),
        ("admin-result-reload-failed", 14, new AdminResultFrame
        {
            Operation = AdminOperation.ReloadDenyList, Succeeded = false, Message = "no deny-list file was configured", Count = -1,
        }, true),
        ("admin-result-lift", 15, new AdminResultFrame { Operation = AdminOperation.LiftSuspension, Lifted = true }, true),
    ];

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var sample in All)
        {
            data.Add(sample.Name);
        }

        return data;
    }

    public static (string Name, uint RequestId, FramePayload Payload, bool FromServer) Get(string name) =>
        All.Single(s => s.Name == name);

    public static FramePayload Decode(in RawFrame frame, bool fromServer) =>
        fromServer ? FrameDecoder.DecodeFromServer(frame) : FrameDecoder.DecodeFromClient(frame);
}

/// <summary>A read-only sequence cut into segments at given offsets (how a socket may deliver bytes).</summary>
internal sealed class Segment : ReadOnlySequenceSegment<byte>
{
    private Segment(ReadOnlyMemory<byte> memory, long runningIndex)
    {
        Memory = memory;
        RunningIndex = runningIndex;
    }

    public static ReadOnlySequence<byte> Split(byte[] bytes, params int[] cuts)
    {
        var bounds = new List<int> { 0 };
        bounds.AddRange(cuts.Where(c => c > 0 && c < bytes.Length).Order());
        bounds.Add(bytes.Length);
        Segment? first = null;
        Segment? last = null;
        for (var i = 0; i + 1 < bounds.Count; i++)
        {
            var segment = new Segment(bytes.AsMemory(bounds[i], bounds[i + 1] - bounds[i]), bounds[i]);
            if (first is null)
            {
                first = segment;
            }
            else
            {
                last!.Next = segment;
            }

            last = segment;
        }

        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }
}
