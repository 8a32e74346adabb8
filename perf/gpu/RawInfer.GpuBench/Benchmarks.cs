using System.Diagnostics;
using System.Globalization;
using RawInfer.Engine.Runner;
using RawInfer.Gpu.Kernels;
using RawInfer.Gpu.Runner;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Native;

namespace RawInfer.GpuBench;

/// <summary>The device measurements; each returns one JSON object as a line of text.</summary>
internal static class Benchmarks
{
    public static string WriteModel(string path, string shape, string dtype, int seed)
    {
        var type = dtype.ToUpperInvariant() switch
        {
            "F32" => TensorType.F32,
            "F16" => TensorType.F16,
            "BF16" => TensorType.BF16,
            "Q8_0" => TensorType.Q8_0,
            _ => throw new ArgumentException($"dtype {dtype}: use f32, f16, bf16 or q8_0"),
        };
        var clock = Stopwatch.StartNew();
        GgufModelWriter.WriteSynthetic(path, ModelShapes.Parse(shape), seed, type);
        return Json(("command", "write-model"), ("path", path), ("bytes", new FileInfo(path).Length), ("seconds", clock.Elapsed.TotalSeconds));
    }

    /// <summary>cuMemcpyDtoD of a large buffer; bandwidth counts the bytes read plus the bytes written.</summary>
    public static string Bandwidth(int mib, int iterations)
    {
        using var context = CudaContext.RetainPrimary(0);
        var (gbs, device) = MeasureCopyBandwidth(context, (long)mib << 20, iterations);
        return Json(("command", "bandwidth"), ("device", device), ("mib", mib), ("copy_gb_s", gbs));
    }

    /// <summary>
    /// The CUDA runner on <paramref name="batch"/> sequences: each prefilled with <paramref name="context"/> random
    /// tokens, then <paramref name="steps"/> decode steps timed end to end (each step ends with the logits on the
    /// host, as in the engine). The roofline is weight bytes per step / copy bandwidth: a decode step must read
    /// every weight once however many sequences it carries.
    /// </summary>
    public static string Decode(string modelPath, int batch, int context, int steps, bool graphs, int minSplit)
    {
        using var model = GgufLlamaLoader.Load(modelPath);
        var c = model.Config;
        var maxTokens = Math.Max(batch, 512);
        using var runner = new CudaModelRunner(model, new CudaRunnerOptions
        {
            MaxBatchedTokens = maxTokens, MaxSequences = batch, DecodeGraphs = graphs, MinTokensPerSplit = minSplit,
        });
        using var bandwidthContext = CudaContext.RetainPrimary(0);
        var (copyGbs, device) = MeasureCopyBandwidth(bandwidthContext, 1L << 30, 20);

        const int BlockSize = 16;
        var blocksPerSequence = (context + steps + 4 + BlockSize - 1) / BlockSize;
        runner.AllocateKvCache(batch * blocksPerSequence, BlockSize);
        var fb = new ForwardBatch(maxTokens, batch, (c.MaxSeqLen + BlockSize - 1) / BlockSize);
        var logits = new float[batch * c.VocabSize];
        var random = new Random(5);
        var lengths = new int[batch];

        // prefill, one sequence per step in chunks of up to maxTokens rows
        for (var s = 0; s < batch; s++)
        {
            while (lengths[s] < context)
            {
                var n = Math.Min(maxTokens, context - lengths[s]);
                Fill(fb, [s], lengths, n, blocksPerSequence, BlockSize, random, c.VocabSize);
                runner.Execute(fb, logits);
            }
        }

        var all = Enumerable.Range(0, batch).ToArray();
        for (var i = 0; i < 3; i++)
        {
            Fill(fb, all, lengths, 1, blocksPerSequence, BlockSize, random, c.VocabSize); // warm-up
            runner.Execute(fb, logits);
        }

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < steps; i++)
        {
            Fill(fb, all, lengths, 1, blocksPerSequence, BlockSize, random, c.VocabSize);
            runner.Execute(fb, logits);
        }

        var seconds = clock.Elapsed.TotalSeconds;
        var stepsPerSecond = steps / seconds;
        var rooflineStepsPerSecond = copyGbs * 1e9 / runner.WeightBytes;
        return Json(
            ("command", "decode"), ("device", device), ("model", Path.GetFileName(modelPath)), ("dtype", runner.ElementType.KernelSuffix()),
            ("batch", batch), ("context", context), ("steps", steps), ("graphs", graphs), ("min_split", minSplit),
            ("graph_captures", runner.DecodeGraphCaptures), ("graph_replays", runner.DecodeGraphReplays),
            ("graph_capture_ms", runner.DecodeGraphCaptureTime.TotalMilliseconds), ("graph_problem", runner.DecodeGraphProblem ?? ""),
            ("tok_s", batch * stepsPerSecond), ("ms_per_step", 1000 / stepsPerSecond),
            ("weight_bytes", runner.WeightBytes), ("copy_gb_s", copyGbs),
            ("roofline_steps_s", rooflineStepsPerSecond), ("percent_of_roofline", 100 * stepsPerSecond / rooflineStepsPerSecond));
    }

    /// <summary>
    /// The decode attention kernel plus its merge on TinyLlama 1.1B's attention shape (32 heads, 4 KV heads,
    /// head 64): K/V bytes read per launch / kernel time (CUDA events).
    /// </summary>
    public static string Attention(int batch, int context, int iterations, int minSplit)
    {
        const int Heads = 32, KvHeads = 4, HeadDim = 64, BlockSize = 16;
        using var context_ = CudaContext.RetainPrimary(0);
        using var stream = new CudaStream(context_);
        using var kernels = CudaKernels.Create(context_);
        var sms = context_.Device.MultiprocessorCount;
        var blocksPerSequence = (context + BlockSize - 1) / BlockSize;
        var numBlocks = batch * blocksPerSequence;
        var cacheBytes = (long)numBlocks * BlockSize * KvHeads * HeadDim * 2;
        using var k = new DeviceBuffer(context_, cacheBytes);
        using var v = new DeviceBuffer(context_, cacheBytes);
        k.Memset(0x3C, stream); // 0x3C3C: f16 1.06, finite everywhere
        v.Memset(0x3C, stream);
        using var q = new DeviceBuffer(context_, (long)batch * Heads * HeadDim * sizeof(float));
        q.Memset(0, stream);

        // block tables: each sequence's blocks scattered over the pool (a fixed shuffle), as after many steps
        var order = Enumerable.Range(0, numBlocks).ToArray();
        new Random(3).Shuffle(order);
        var tables = new int[batch * blocksPerSequence];
        Array.Copy(order, tables, tables.Length);
        var lens = Enumerable.Repeat(context, batch).ToArray();
        using var deviceTables = new DeviceBuffer(context_, (long)tables.Length * sizeof(int));
        using var deviceLens = new DeviceBuffer(context_, (long)batch * sizeof(int));
        deviceTables.CopyFromHost<int>(tables, stream);
        deviceLens.CopyFromHost<int>(lens, stream);
        var plan = PagedAttentionPlan.Choose(batch, KvHeads, context, sms, minSplit);
        var splitRows = PagedAttentionPlan.MaxSplitRows(batch, KvHeads, sms);
        using var partialOut = new DeviceBuffer(context_, (long)splitRows * Heads * HeadDim * sizeof(float));
        using var partialMax = new DeviceBuffer(context_, (long)splitRows * Heads * sizeof(float));
        using var partialSum = new DeviceBuffer(context_, (long)splitRows * Heads * sizeof(float));
        using var output = new DeviceBuffer(context_, (long)batch * Heads * HeadDim * 2);
        using var start = new CudaEvent(context_);
        using var end = new CudaEvent(context_);

        void Launch()
        {
            kernels.PagedAttentionDecode(GpuElementType.F16, partialOut.Pointer, partialMax.Pointer, partialSum.Pointer, q.Pointer,
                k.Pointer, v.Pointer, deviceTables.Pointer, deviceLens.Pointer, batch, blocksPerSequence, BlockSize,
                Heads, KvHeads, HeadDim, plan, 0.125f, stream);
            kernels.PagedAttentionMerge(GpuElementType.F16, output.Pointer, partialOut.Pointer, partialMax.Pointer, partialSum.Pointer,
                batch, Heads, HeadDim, plan.NumSplits, stream);
        }

        Launch();
        start.Record(stream);
        for (var i = 0; i < iterations; i++)
        {
            Launch();
        }

        end.Record(stream);
        end.Synchronize();
        var ms = CudaEvent.ElapsedMilliseconds(start, end) / iterations;
        var bytes = 2.0 * batch * context * KvHeads * HeadDim * 2; // K and V, 2 bytes each
        return Json(
            ("command", "attention"), ("device", context_.Device.Name), ("batch", batch), ("context", context),
            ("splits", plan.NumSplits), ("tokens_per_split", plan.TokensPerSplit), ("us_per_launch", ms * 1000), ("kv_gb_s", bytes / (ms / 1000) / 1e9));
    }

    private static (double GbPerSecond, string Device) MeasureCopyBandwidth(CudaContext context, long bytes, int iterations)
    {
        using var stream = new CudaStream(context);
        using var a = new DeviceBuffer(context, bytes);
        using var b = new DeviceBuffer(context, bytes);
        using var start = new CudaEvent(context);
        using var end = new CudaEvent(context);
        a.Memset(1, stream);
        b.CopyFrom(a, bytes, stream); // warm-up
        start.Record(stream);
        for (var i = 0; i < iterations; i++)
        {
            b.CopyFrom(a, bytes, stream);
        }

        end.Record(stream);
        end.Synchronize();
        var seconds = CudaEvent.ElapsedMilliseconds(start, end) / 1000.0;
        return (2.0 * bytes * iterations / seconds / 1e9, context.Device.Name);
    }

    /// <summary>Fills the batch with the next <paramref name="rows"/> tokens of each listed sequence (logits of its last row).</summary>
    private static void Fill(ForwardBatch fb, int[] sequences, int[] lengths, int rows, int blocksPerSequence, int blockSize, Random random, int vocab)
    {
        fb.Clear();
        var row = 0;
        for (var i = 0; i < sequences.Length; i++)
        {
            var s = sequences[i];
            var table = fb.BlockTable(i);
            for (var b = 0; b < blocksPerSequence; b++)
            {
                table[b] = (s * blocksPerSequence) + b;
            }

            for (var r = 0; r < rows; r++)
            {
                var position = lengths[s] + r;
                fb.TokenIds[row] = random.Next(3, vocab);
                fb.Positions[row] = position;
                fb.SlotMapping[row] = (table[position / blockSize] * blockSize) + (position % blockSize);
                row++;
            }

            lengths[s] += rows;
            fb.ContextLengths[i] = lengths[s];
            fb.QueryStart[i + 1] = row;
            fb.LogitRows[i] = row - 1;
        }

        fb.NumSequences = sequences.Length;
        fb.NumTokens = row;
        fb.NumLogitRows = sequences.Length;
    }

    private static string Json(params (string Key, object Value)[] fields)
    {
        var parts = fields.Select(f => f.Value switch
        {
            string s => $"\"{f.Key}\": \"{s.Replace("\"", "'", StringComparison.Ordinal)}\"",
            double d => string.Create(CultureInfo.InvariantCulture, $"\"{f.Key}\": {d:G6}"),
            bool b => $"\"{f.Key}\": {(b ? "true" : "false")}",
            _ => string.Create(CultureInfo.InvariantCulture, $"\"{f.Key}\": {f.Value}"),
        });
        return "{" + string.Join(", ", parts) + "}";
    }
}
