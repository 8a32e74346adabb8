namespace RawInfer.Protocol.Tests;

public class FrameRoundTripTests
{
    [Theory]
    [MemberData(nameof(SampleFrames.Names), MemberType = typeof(SampleFrames))]
    public void Every_frame_round_trips_byte_for_byte(string name)
    {
        var (_, id, payload, fromServer) = SampleFrames.Get(name);
        var bytes = FrameWriter.ToArray(id, payload);
        Assert.Equal(FrameWriter.Measure(payload), bytes.Length);

        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(OperationStatus.Done, FrameReader.TryReadFrame(ref reader, 1 << 20, out var frame, out _));
        Assert.Equal(0, reader.Remaining);
        Assert.Equal(payload.Type, frame.Type);
        Assert.Equal(id, frame.RequestId);
        var decoded = SampleFrames.Decode(frame, fromServer);
        Assert.Equal(bytes, FrameWriter.ToArray(id, decoded));
    }

    [Theory]
    [MemberData(nameof(SampleFrames.Names), MemberType = typeof(SampleFrames))]
    public void Every_frame_split_at_every_byte_position_parses_the_same(string name)
    {
        var (_, id, payload, fromServer) = SampleFrames.Get(name);
        var bytes = FrameWriter.ToArray(id, payload);
        for (var cut = 1; cut < bytes.Length; cut++)
        {
            // The prefix alone is never a frame, and the parser consumes nothing from it.
            var prefix = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes, 0, cut));
            Assert.Equal(OperationStatus.NeedMoreData, FrameReader.TryReadFrame(ref prefix, 1 << 20, out _, out _));
            Assert.Equal(0, prefix.Consumed);

            // The whole frame in two segments cut there decodes to the same bytes.
            var reader = new SequenceReader<byte>(Segment.Split(bytes, cut));
            Assert.Equal(OperationStatus.Done, FrameReader.TryReadFrame(ref reader, 1 << 20, out var frame, out _));
            Assert.Equal(bytes, FrameWriter.ToArray(id, SampleFrames.Decode(frame, fromServer)));
        }
    }

    [Fact]
    public void All_frames_back_to_back_in_one_byte_segments_parse_in_order()
    {
        var stream = SampleFrames.All.SelectMany(s => FrameWriter.ToArray(s.RequestId, s.Payload)).ToArray();
        var reader = new SequenceReader<byte>(Segment.Split(stream, Enumerable.Range(1, stream.Length - 1).ToArray()));
        foreach (var (_, id, payload, fromServer) in SampleFrames.All)
        {
            Assert.Equal(OperationStatus.Done, FrameReader.TryReadFrame(ref reader, 1 << 20, out var frame, out _));
            Assert.Equal(FrameWriter.ToArray(id, payload), FrameWriter.ToArray(id, SampleFrames.Decode(frame, fromServer)));
        }

        Assert.Equal(0, reader.Remaining);
    }

    [Fact]
    public void Submit_fields_survive_the_wire()
    {
        var sent = (SubmitFrame)SampleFrames.Get("submit-ids").Payload;
        var got = Assert.IsType<SubmitFrame>(RoundTrip(sent, fromServer: false));
        Assert.Equal(sent.PromptTokenIds, got.PromptTokenIds);
        Assert.Null(got.Prompt);
        Assert.False(got.Stream);
        Assert.False(got.AddBos);
        Assert.True(got.IgnoreEos);
        Assert.Equal(0.8f, got.Temperature);
        Assert.Equal(40, got.TopK);
        Assert.Equal(42UL, got.Seed);
        Assert.Equal(-3, got.Priority);
        Assert.Equal(TimeSpan.FromSeconds(2), got.Deadline);
        Assert.Equal(5, got.TopLogprobs);
        Assert.Equal(sent.StopTokenIds, got.StopTokenIds);

        var text = Assert.IsType<SubmitFrame>(RoundTrip(SampleFrames.Get("submit-text").Payload, fromServer: false));
        Assert.Equal("Once upon a time", text.Prompt);
        Assert.Equal(["." , "é☃"], text.StopStrings);
        Assert.Null(text.Seed);
        Assert.Null(text.Deadline);
    }

    [Fact]
    public void Tokens_done_and_error_fields_survive_the_wire()
    {
        var tokens = Assert.IsType<TokensFrame>(RoundTrip(SampleFrames.Get("tokens-logprobs").Payload, fromServer: true));
        Assert.Equal([5], tokens.TokenIds);
        Assert.Equal(-2.5f, tokens.Logprobs![0].Top[1].Logprob);

        var done = Assert.IsType<DoneFrame>(RoundTrip(SampleFrames.Get("done").Payload, fromServer: true));
        Assert.Equal(DoneReason.Length, done.Reason);
        Assert.Equal(32, done.Usage.CompletionTokens);
        Assert.Equal(TimeSpan.FromMilliseconds(20), done.Usage.TimeToFirstToken);

        var error = Assert.IsType<ErrorFrame>(RoundTrip(SampleFrames.Get("error").Payload, fromServer: true));
        Assert.Equal(ErrorCode.Overloaded, error.Code);
        Assert.Equal(TimeSpan.FromMilliseconds(250), error.RetryAfter);
    }

    private static FramePayload RoundTrip(FramePayload payload, bool fromServer)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(FrameWriter.ToArray(1, payload)));
        Assert.Equal(OperationStatus.Done, FrameReader.TryReadFrame(ref reader, 1 << 20, out var frame, out _));
        return SampleFrames.Decode(frame, fromServer);
    }
}
