using RawInfer.Cli;

return await CliApp.RunAsync(args, Console.Out, Console.Error, CliContext.FromProcess()).ConfigureAwait(false);
