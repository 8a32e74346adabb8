using System.Globalization;
using LLama;
using LLama.Native;
using RawInfer.Cpu;

namespace RawInfer.LlamaCompare;

/// <summary>
/// Do both engines compute the same function on the same file? Each runs the same prompt, then decodes greedily
/// on its own argmax for a few steps; we compare the argmax at every step and the largest logit difference.
/// RoPE is where a layout mismatch would show: RawInfer rotates adjacent pairs (2i, 2i+1) on the Q and K rows as
/// stored, and so does llama.cpp's LLAMA architecture (rope type NORM); the HF converters permute Q/K rows to get
/// there, llama2.c-layout weights need no permutation. If that claim were wrong, the logits would part after the
/// first position that attends to another.
/// </summary>
internal static class LogitCheck
{
    /// <summary>Result of the greedy comparison.</summary>
    /// <param name="Steps">Steps compared (the first is the prompt's last row).</param>
    /// <param name="ArgmaxAgree">Steps whose argmax agreed.</param>
    /// <param name="FirstArgmaxRawInfer">RawInfer's argmax after the prompt.</param>
    /// <param name="FirstArgmaxLlama">llama.cpp's argmax after the prompt.</param>
    /// <param name="FirstMaxAbsDiff">Largest |difference| of the logits after the prompt.</param>
    /// <param name="MaxAbsDiff">Largest |difference| over all steps compared.</param>
    /// <param name="LogitRange">max |logit| of llama.cpp after the prompt (scale for the differences).</param>
    /// <param name="RunnerMaxAbsDiff">Largest |difference| between the batched runner's prompt logits (the whole
    /// prompt as one prefill chunk, the path the prefill and batched tests time) and llama.cpp's.</param>
    public sealed record Result(int Steps, int ArgmaxAgree, int FirstArgmaxRawInfer, int FirstArgmaxLlama,
        double FirstMaxAbsDiff, double MaxAbsDiff, double LogitRange, double RunnerMaxAbsDiff)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture,
            $"first step argmax RawInfer {FirstArgmaxRawInfer} / llama.cpp {FirstArgmaxLlama}, max |Δlogit| {FirstMaxAbsDiff:G3} (max |logit| {LogitRange:G3}; runner prefill {RunnerMaxAbsDiff:G3}); greedy argmax agreed on {ArgmaxAgree}/{Steps} steps, max |Δlogit| over them {MaxAbsDiff:G3}");
    }

    /// <summary>Runs the prompt and <paramref name="steps"/> − 1 greedy continuations on both sides.</summary>
    /// <remarks>Both continue with RawInfer's token so the contexts stay identical even where the argmax differs.</remarks>
    public static Result Run(RawInferSide rawInfer, LlamaCppSide llama, int[] prompt, int steps)
    {
        using var transformer = rawInfer.CreateTransformer();
        var kv = transformer.CreateKvCache(prompt.Length + steps);
        using var context = llama.CreateContext(1, prompt.Length + steps, Math.Max(prompt.Length, 32));
        var handle = context.NativeHandle;
        var batch = new LLamaBatch();

        ReadOnlySpan<float> ours = default;
        for (var i = 0; i < prompt.Length; i++)
        {
            ours = transformer.Forward(prompt[i], i, kv);
            batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        }

        Check(handle.Decode(batch));
        var theirs = handle.GetLogitsIth(batch.TokenCount - 1);
        var runnerDiff = MaxAbsDiff(rawInfer.RunnerPromptLogits(prompt), theirs);
        int agree = 0, firstOurs = 0, firstTheirs = 0;
        double firstDiff = 0, maxDiff = 0, range = 0;
        for (var step = 0; step < steps; step++)
        {
            var a = Argmax(ours);
            var b = Argmax(theirs);
            var diff = MaxAbsDiff(ours, theirs);
            if (step == 0)
            {
                (firstOurs, firstTheirs, firstDiff) = (a, b, diff);
                foreach (var v in theirs)
                {
                    range = Math.Max(range, Math.Abs(v));
                }
            }

            agree += a == b ? 1 : 0;
            maxDiff = Math.Max(maxDiff, diff);
            if (step == steps - 1)
            {
                break;
            }

            var position = prompt.Length + step;
            ours = transformer.Forward(a, position, kv);
            batch.Clear();
            batch.Add(a, position, LLamaSeqId.Zero, true);
            Check(handle.Decode(batch));
            theirs = handle.GetLogitsIth(0);
        }

        return new Result(steps, agree, firstOurs, firstTheirs, firstDiff, maxDiff, range, runnerDiff);
    }

    private static int Argmax(ReadOnlySpan<float> x)
    {
        var best = 0;
        for (var i = 1; i < x.Length; i++)
        {
            best = x[i] > x[best] ? i : best;
        }

        return best;
    }

    private static double MaxAbsDiff(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length)
        {
            throw new InvalidOperationException($"logit lengths differ: RawInfer {x.Length}, llama.cpp {y.Length}");
        }

        double max = 0;
        for (var i = 0; i < x.Length; i++)
        {
            max = Math.Max(max, Math.Abs(x[i] - y[i]));
        }

        return max;
    }

    private static void Check(DecodeResult result)
    {
        if (result != DecodeResult.Ok)
        {
            throw new InvalidOperationException($"llama_decode failed with {result} during the logit check");
        }
    }
}
