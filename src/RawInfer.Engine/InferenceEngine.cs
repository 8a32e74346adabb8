using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using RawInfer.Engine.Runner;
using RawInfer.Engine.Scheduling;
using RawInfer.KvCache;
using RawInfer.Tokenizers;

namespace RawInfer.Engine;

/// <summary>
/// Serves many generation requests at once on one model: callers submit and await (or stream) their results while
/// a dedicated engine thread batches every running request into each forward pass (continuous batching on the
/// paged KV cache). Thread-safe; the model runner and tokenizer are used by the engine and not disposed by it.
/// </summary>
/// <example>
/// <code>
/// await using var engine = new InferenceEngine(runner, tokenizer, new EngineOptions { MaxRunningSequences = 64 });
/// var result = await engine.GenerateAsync(new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 64 }, ct);
/// await foreach (var chunk in engine.StreamAsync(new GenerationRequest { Prompt = "Hello" }, ct)) Console.Write(chunk.Text);
/// </code>
/// </example>
public sealed partial class InferenceEngine : IAsyncDisposable
{
    private readonly IModelRunner _runner;
    private readonly ITokenizer _tokenizer;
    private readonly EngineOptions _options;
    private readonly TimeProvider _time;
    private readonly long _startTimestamp;
    private readonly int _maxSeqLen;
    private readonly int _vocabSize;
    private readonly Scheduler _scheduler;
    private readonly ForwardBatch _batch;
    private readonly float[] _logits; // (maxRunning, vocab) this step's logit rows
    private readonly EngineMetrics _metrics;
    private readonly Channel<EngineRequest> _incoming =
        Channel.CreateUnbounded<EngineRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Thread _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _warmedUp = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private long _nextSequenceId;
    private int _queuedRequests;
    private long _queuedTokens;
    private int _shutdown;
    private volatile bool _abort;
    private volatile Exception? _fault;

    /// <summary>Starts an engine on <paramref name="runner"/>; allocates the KV cache and the engine thread.</summary>
    /// <exception cref="ArgumentException">The options are out of range or the KV budget holds no block.</exception>
    public InferenceEngine(IModelRunner runner, ITokenizer tokenizer, EngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(runner);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options ??= new EngineOptions();
        options.Validate();
        _runner = runner;
        _tokenizer = tokenizer;
        _options = options;
        _time = options.TimeProvider;
        _maxSeqLen = runner.Config.MaxSeqLen;
        _vocabSize = runner.Config.VocabSize;
        if (tokenizer.VocabSize > _vocabSize)
        {
            throw new ArgumentException(
                $"the tokenizer has {tokenizer.VocabSize} tokens but the model's vocabulary is {_vocabSize}", nameof(tokenizer));
        }

        var numBlocks = options.NumKvBlocks > 0
            ? options.NumKvBlocks
            : KvCacheSizing.BlocksFor(options.KvCacheBytes, runner.KvBytesPerToken, options.BlockSize);
        if (numBlocks == 0)
        {
            throw new ArgumentException(
                $"KvCacheBytes {options.KvCacheBytes} holds no block of {options.BlockSize} tokens × {runner.KvBytesPerToken} bytes",
                nameof(options));
        }

        var watermark = options.WatermarkBlocks >= 0
            ? Math.Min(options.WatermarkBlocks, numBlocks - 1)
            : KvCacheSizing.DefaultWatermarkBlocks(numBlocks);
        // the runner's pool first: it refuses a budget it cannot hold before the engine sizes anything by it
        runner.AllocateKvCache(numBlocks, options.BlockSize);
        var blocks = new BlockManager(numBlocks, options.BlockSize, watermark);
        _scheduler = new Scheduler(blocks, options);
        var maxBlocksPerSequence = (_maxSeqLen + options.BlockSize - 1) / options.BlockSize;
        _batch = new ForwardBatch(options.MaxBatchedTokens, options.MaxRunningSequences, maxBlocksPerSequence);
        _logits = new float[checked(options.MaxRunningSequences * _vocabSize)];
        _metrics = new EngineMetrics(numBlocks);

        _startTimestamp = _time.GetTimestamp();
        _thread = new Thread(Loop) { IsBackground = true, Name = "rawinfer-engine" };
        _thread.Start();
    }

    /// <summary>Name of the System.Diagnostics.Metrics meter the engine reports to.</summary>
    public static string MeterName => EngineMetrics.MeterName;

    /// <summary>KV-cache blocks in the pool.</summary>
    public int TotalKvBlocks => _scheduler.Blocks.TotalBlocks;

    /// <summary>Requests that may wait before submits are refused.</summary>
    public EngineOptions Options => _options;

    /// <summary>
    /// Completes once the engine thread has run its <see cref="EngineOptions.WarmUpRounds"/> (at once for none);
    /// faults with the runner's exception if a warm-up pass failed (the engine has then stopped, see
    /// <see cref="Fault"/>). Requests submitted before then wait in the queue.
    /// </summary>
    public Task WarmedUp => _warmedUp.Task;

    /// <summary>The exception that stopped the engine loop (a broken invariant), or null.</summary>
    public Exception? Fault => _fault;

    /// <summary>The allocator, for tests to audit once the engine has stopped.</summary>
    internal BlockManager Blocks => _scheduler.Blocks;

    /// <summary>A snapshot of counters and current load.</summary>
    public EngineStats GetStats() => _metrics.Snapshot(_time.GetElapsedTime(_startTimestamp));

    /// <summary>The meter this engine's instruments report to (several engines share its name).</summary>
    internal System.Diagnostics.Metrics.Meter Meter => _metrics.Meter;

    /// <summary>Runs a request to the end and returns the whole result.</summary>
    /// <exception cref="EngineOverloadedException">The waiting queue is full.</exception>
    /// <exception cref="ArgumentException">The request is invalid (too long, bad parameters).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled (the request's blocks are freed by then).</exception>
    public async Task<GenerationResult> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var text = new StringBuilder();
        var ids = new List<int>();
        List<PositionLogprobs>? logprobs = request.TopLogprobs > 0 ? [] : null;
        string? id = null;
        await foreach (var chunk in StreamCore(request, cancellationToken, r => id = r).ConfigureAwait(false))
        {
            text.Append(chunk.Text);
            ids.AddRange(chunk.TokenIds);
            if (chunk.Logprobs is not null)
            {
                logprobs?.AddRange(chunk.Logprobs);
            }

            if (chunk.IsFinal)
            {
                return new GenerationResult(id!, text.ToString(), ids, logprobs, chunk.FinishReason!.Value, chunk.FinishDetail, chunk.Usage!);
            }
        }

        throw new InvalidOperationException("the engine ended a stream without a final chunk");
    }

    /// <summary>
    /// Streams a request's output as it is produced. The last chunk carries the finish reason. Leaving the loop early
    /// cancels the request.
    /// </summary>
    /// <exception cref="EngineOverloadedException">The waiting queue is full.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public IAsyncEnumerable<TokenChunk> StreamAsync(GenerationRequest request, CancellationToken cancellationToken = default) =>
        StreamCore(request, cancellationToken, null);

    /// <summary>
    /// Blocking form of <see cref="GenerateAsync"/> for synchronous callers. Refuses to run on the engine thread
    /// (from a guard or event sink), where it would deadlock the engine.
    /// </summary>
    public GenerationResult Generate(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        if (Environment.CurrentManagedThreadId == _thread.ManagedThreadId)
        {
            throw new InvalidOperationException("Generate blocks; it cannot be called on the engine thread");
        }

        return GenerateAsync(request, cancellationToken).GetAwaiter().GetResult();
    }

    /// <summary>Stops the engine: drains (finishes every request) or aborts them, then ends the engine thread.</summary>
    public async Task ShutdownAsync(ShutdownMode mode, CancellationToken cancellationToken = default)
    {
        if (mode == ShutdownMode.Abort)
        {
            _abort = true;
        }

        Interlocked.Exchange(ref _shutdown, 1);
        _incoming.Writer.TryComplete();
        await _stopped.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Shuts down as <see cref="EngineOptions.DisposeMode"/> says and releases the metrics.</summary>
    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync(_options.DisposeMode).ConfigureAwait(false);
        _metrics.Dispose();
    }

    private async IAsyncEnumerable<TokenChunk> StreamCore(
        GenerationRequest request,
        [EnumeratorCancellation] CancellationToken cancellationToken,
        Action<string>? onId)
    {
        var (engineRequest, done, requestId) = await SubmitAsync(request, cancellationToken).ConfigureAwait(false);
        onId?.Invoke(requestId);
        if (engineRequest is null)
        {
            yield return done!;
            yield break;
        }

        var outbox = engineRequest.Outbox;
        var completed = false;
        var registration = cancellationToken.UnsafeRegister(static state => ((EngineRequest)state!).RequestCancel(), engineRequest);
        try
        {
            // Reading does not observe the token: after a cancel the engine ends the stream within a step, with its
            // blocks freed, and only then is the cancellation reported.
            while (true)
            {
                while (outbox.TryRead(out var chunk))
                {
                    if (chunk.IsFinal)
                    {
                        completed = true;
                        if (chunk.FinishReason == FinishReason.Cancelled)
                        {
                            cancellationToken.ThrowIfCancellationRequested();
                        }
                    }

                    yield return chunk;
                    if (completed)
                    {
                        yield break;
                    }
                }

                if (!await outbox.WaitToReadAsync().ConfigureAwait(false) && !outbox.HasChunks)
                {
                    yield break; // abandoned: the engine stopped without a final chunk
                }
            }
        }
        finally
        {
            await registration.DisposeAsync().ConfigureAwait(false);
            if (!completed)
            {
                engineRequest.RequestCancel(); // the caller stopped reading early
            }
        }
    }
}
