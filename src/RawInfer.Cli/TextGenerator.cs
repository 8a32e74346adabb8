using System.Diagnostics;
using RawInfer.Cpu;
using RawInfer.Engine.Sampling;
using RawInfer.Tokenizers;

namespace RawInfer.Cli;

/// <summary>Timings of one generation: the prompt pass and the sampled tokens.</summary>
internal sealed record GenerationStats(int PromptTokens, TimeSpan PromptTime, int GeneratedTokens, TimeSpan DecodeTime);

/// <summary>
/// One sequence, one token at a time, llama2.c style: feed the prompt token by token, then sample until EOS, the
/// token budget or the end of the model's context. Text is streamed as soon as whole characters are known.
/// </summary>
internal static class TextGenerator
{
    public static GenerationStats Run(
        CpuTransformer transformer, ITokenizer tokenizer, Sampler sampler, string prompt, int maxNewTokens, TextWriter output)
    {
        var config = transformer.Config;
        int[] promptTokens = tokenizer.Encode(prompt, addBos: true, addEos: false);
        if (promptTokens.Length == 0)
        {
            throw new CliException("the tokenizer has no BOS token and the prompt is empty: nothing to start from");
        }

        if (promptTokens.Length > config.MaxSeqLen)
        {
            throw new CliException($"the prompt is {promptTokens.Length} tokens; the model's context is {config.MaxSeqLen}");
        }

        // Forwarded positions: the P prompt tokens, then every sampled token but the last.
        int capacity = Math.Min(config.MaxSeqLen, promptTokens.Length + Math.Max(maxNewTokens - 1, 0));
        var kv = transformer.CreateKvCache(capacity);
        var history = new int[promptTokens.Length + maxNewTokens];
        promptTokens.CopyTo(history, 0);
        var logits = new float[config.VocabSize];
        var detokenizer = new IncrementalDetokenizer(tokenizer);

        // Prompt: the next token of each position is given. It is printed too, as llama2.c does (BOS prints nothing).
        var clock = Stopwatch.StartNew();
        output.Write(detokenizer.Push(promptTokens[0]));
        for (int position = 0; position < promptTokens.Length; position++)
        {
            transformer.Forward(promptTokens[position], position, kv).CopyTo(logits);
            if (position + 1 < promptTokens.Length)
            {
                output.Write(detokenizer.Push(promptTokens[position + 1]));
            }
        }

        output.Flush();
        var promptTime = clock.Elapsed;
        clock.Restart();

        // Decode: sample from the last logits, print, feed the token back.
        int length = promptTokens.Length;
        int generated = 0;
        while (generated < maxNewTokens)
        {
            int next = sampler.Sample(logits, history.AsSpan(0, length), promptTokens.Length);
            generated++;

            // The tinyllamas models separate stories with BOS; either marker ends the text.
            if (next == tokenizer.EosId || next == tokenizer.BosId)
            {
                break;
            }

            history[length] = next;
            output.Write(detokenizer.Push(next));
            output.Flush();
            if (generated == maxNewTokens || length >= capacity)
            {
                break; // budget spent, or the context is full: no position left to feed the token at
            }

            transformer.Forward(next, length, kv).CopyTo(logits);
            length++;
        }

        output.Write(detokenizer.Flush());
        output.WriteLine();
        output.Flush();
        return new GenerationStats(promptTokens.Length, promptTime, generated, clock.Elapsed);
    }
}
