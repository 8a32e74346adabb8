using RawInfer.LlamaCompare;

// dotnet run -c Release --project perf/RawInfer.LlamaCompare -- --model /tmp/m110-f32.gguf [--threads 2] [--runs 5]
return CompareCommand.Create(Console.Out).Parse(args).Invoke();
