using System.Buffers;
using BenchmarkDotNet.Attributes;
using RawInfer.Protocol;

namespace RawInfer.Benchmarks;

/// <summary>
/// Frame codec throughput and allocations: encoding a TOKENS frame (the per-token hot path of the server), parsing
/// a batch of frames with <see cref="FrameReader.TryReadFrame"/>, decoding TOKENS and SUBMIT payloads.
/// Run: <c>dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter "*ProtocolBenchmarks*"</c>.
/// </summary>
[MemoryDiagnoser]
public class ProtocolBenchmarks
{
    private const int FramesPerBatch = 64;

    private readonly TokensFrame _tokens = new([1734], " upon");
    private readonly SubmitFrame _submit = new() { Prompt = "Once upon a time there was a little girl", MaxTokens = 256, Temperature = 0.8f, StopStrings = ["\n\n"] };
    private readonly ArrayBufferWriter<byte> _output = new(64 * 1024);
    private byte[] _tokensBatch = [];
    private byte[] _submitBytes = [];

    [GlobalSetup]
    public void Setup()
    {
        var one = FrameWriter.ToArray(7, _tokens);
        _tokensBatch = new byte[one.Length * FramesPerBatch];
        for (var i = 0; i < FramesPerBatch; i++)
        {
            one.CopyTo(_tokensBatch, i * one.Length);
        }

        _submitBytes = FrameWriter.ToArray(1, _submit);
    }

    /// <summary>64 TOKENS frames encoded into a buffer writer, as the server's writer loop does per flush.</summary>
    [Benchmark(OperationsPerInvoke = FramesPerBatch)]
    public int EncodeTokens()
    {
        _output.ResetWrittenCount();
        var total = 0;
        for (var i = 0; i < FramesPerBatch; i++)
        {
            total += FrameWriter.Write(_output, 7, _tokens);
        }

        return total;
    }

    /// <summary>Splitting 64 back-to-back TOKENS frames (header parse only), as a reader loop does per read.</summary>
    [Benchmark(OperationsPerInvoke = FramesPerBatch)]
    public int ReadFrames()
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(_tokensBatch));
        var count = 0;
        while (FrameReader.TryReadFrame(ref reader, 1 << 20, out _, out _) == OperationStatus.Done)
        {
            count++;
        }

        return count;
    }

    /// <summary>Header plus payload decode of 64 TOKENS frames (the client side of every token).</summary>
    [Benchmark(OperationsPerInvoke = FramesPerBatch)]
    public int DecodeTokens()
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(_tokensBatch));
        var ids = 0;
        while (FrameReader.TryReadFrame(ref reader, 1 << 20, out var frame, out _) == OperationStatus.Done)
        {
            ids += ((TokensFrame)FrameDecoder.DecodeFromServer(frame)).TokenIds.Count;
        }

        return ids;
    }

    /// <summary>One SUBMIT decoded (once per request on the server).</summary>
    [Benchmark]
    public FramePayload DecodeSubmit()
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(_submitBytes));
        FrameReader.TryReadFrame(ref reader, 1 << 20, out var frame, out _);
        return FrameDecoder.DecodeFromClient(frame);
    }
}
