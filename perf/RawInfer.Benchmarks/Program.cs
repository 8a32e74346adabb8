// `step-ab ...` compares a kernel switch on and off within one process (StepComparison); anything else goes to
// BenchmarkDotNet.
if (args.Length > 0 && args[0] == "step-ab")
{
    return RawInfer.Benchmarks.StepComparison.Run(args[1..]);
}

BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
