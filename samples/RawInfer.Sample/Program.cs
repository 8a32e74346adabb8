// Usage: dotnet run --project samples/RawInfer.Sample -- path/to/stories260K.bin path/to/tok512.bin
using RawInfer.Cpu;
using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.Engine.Sampling;
using RawInfer.Models.Llama2c;
using RawInfer.Tokenizers;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: RawInfer.Sample MODEL.bin TOKENIZER.bin");
    return 1;
}

using var model = Llama2cCheckpoint.Load(args[0]);
var tokenizer = LlamaTokenizer.Load(args[1], model.Config.VocabSize);
CpuWeightLayout.TryRewriteInPlace(model, out _); // Q8_0 weights in the CPU's layout, in place (this F32 model has none)
using var runner = new CpuModelRunner(model);
await using var engine = new InferenceEngine(runner, tokenizer, new EngineOptions { MaxRunningSequences = 32 });

// Stream one request while three others run in the same batches.
var others = new[] { "Tom had a dog", "The sun was", "One day" }
    .Select(p => engine.GenerateAsync(new GenerationRequest { Prompt = p, MaxTokens = 40, Sampling = new SamplingParams { Temperature = 0.8f, Seed = 1 } }))
    .ToList();
await foreach (var chunk in engine.StreamAsync(new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 80 }))
{
    Console.Write(chunk.Text);
}

Console.WriteLine();
foreach (var result in await Task.WhenAll(others))
{
    Console.WriteLine($"[{result.RequestId}] {result.FinishReason}: {result.Text}");
}

// Blocking callers can use the synchronous call (never from the engine thread).
var sync = engine.Generate(new GenerationRequest { Prompt = "A cat", MaxTokens = 20 });
Console.WriteLine($"[sync] {sync.Text}");
Console.WriteLine(engine.GetStats());
return 0;
