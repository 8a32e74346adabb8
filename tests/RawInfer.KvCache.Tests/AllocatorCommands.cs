using FsCheck;
using FsCheck.Fluent;

namespace RawInfer.KvCache.Tests;

/// <summary>One step of a model-based scenario. ToString reads like a line of a script, for shrunk counterexamples.</summary>
internal abstract record AllocatorCommand;

internal sealed record AllocateCommand(int Id, int[] Prompt) : AllocatorCommand
{
    public override string ToString() => $"Allocate #{Id} [{string.Join(' ', Prompt)}]";
}

internal sealed record AppendCommand(int Id, int[] Tokens) : AllocatorCommand
{
    public override string ToString() => $"Append #{Id} [{string.Join(' ', Tokens)}]";
}

internal sealed record ForkCommand(int Parent, int Child) : AllocatorCommand
{
    public override string ToString() => $"Fork #{Parent} -> #{Child}";
}

internal sealed record FreeCommand(int Id) : AllocatorCommand
{
    public override string ToString() => $"Free #{Id}";
}

internal sealed record CanAllocateCommand(int[] Prompt) : AllocatorCommand
{
    public override string ToString() => $"CanAllocate [{string.Join(' ', Prompt)}]";
}

internal sealed record CanAppendAllCommand(int Tokens) : AllocatorCommand
{
    public override string ToString() => $"CanAppend(all live, {Tokens})";
}

/// <summary>A pool configuration and a command script.</summary>
internal sealed record Scenario(int NumBlocks, int BlockSize, int Watermark, AllocatorCommand[] Commands)
{
    public override string ToString() =>
        $"pool {NumBlocks} blocks × {BlockSize}, watermark {Watermark}:{Environment.NewLine}  "
        + string.Join(Environment.NewLine + "  ", Commands.Select(c => c.ToString()));
}

/// <summary>Generators and shrinkers for allocator scenarios.</summary>
internal static class AllocatorGen
{
    private const int MaxId = 5;

    // Prompts start with a slice of one of a few stems so that prefixes (and whole blocks) collide often.
    private static readonly int[][] Stems =
    [
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
        [0, 1, 1, 0, 0, 1, 1, 0, 0, 1],
    ];

    public static Arbitrary<Scenario> Scenarios(int maxBlocks = 16) => Arb.From(ScenarioGen(maxBlocks), Shrink);

    private static Gen<Scenario> ScenarioGen(int maxBlocks) =>
        from blockSize in Gen.Choose(1, 4)
        from numBlocks in Gen.Choose(3, maxBlocks)
        from watermark in Gen.Choose(0, 2)
        from commands in Gen.ArrayOf(Command(blockSize))
        select new Scenario(numBlocks, blockSize, watermark, commands);

    private static Gen<int> Id => Gen.Choose(0, MaxId);

    private static Gen<int[]> Tokens(int maxLength) =>
        from length in Gen.Choose(1, maxLength)
        from tokens in Gen.ArrayOf(Gen.Elements(0, 1), length)
        select tokens;

    private static Gen<int[]> Prompt(int blockSize) =>
        from stem in Gen.Elements(Stems)
        from stemLength in Gen.Choose(0, stem.Length)
        from suffix in Gen.Frequency((3, Gen.Constant(Array.Empty<int>())), (2, Tokens(blockSize + 1)))
        let prompt = stem.Take(stemLength).Concat(suffix).ToArray()
        select prompt.Length == 0 ? [0] : prompt;

    private static Gen<AllocatorCommand> Command(int blockSize) => Gen.Frequency(
        (5, from id in Id from prompt in Prompt(blockSize) select (AllocatorCommand)new AllocateCommand(id, prompt)),
        (5, from id in Id from tokens in Tokens((2 * blockSize) + 1) select (AllocatorCommand)new AppendCommand(id, tokens)),
        (2, from parent in Id from child in Id select (AllocatorCommand)new ForkCommand(parent, child)),
        (3, Id.Select(id => (AllocatorCommand)new FreeCommand(id))),
        (1, Prompt(blockSize).Select(p => (AllocatorCommand)new CanAllocateCommand(p))),
        (1, Gen.Choose(0, (2 * blockSize) + 1).Select(k => (AllocatorCommand)new CanAppendAllCommand(k))));

    /// <summary>Drops chunks of commands, then single commands, then shortens token lists and the pool.</summary>
    private static IEnumerable<Scenario> Shrink(Scenario s)
    {
        var commands = s.Commands;
        for (var chunk = commands.Length / 2; chunk >= 1; chunk /= 2)
        {
            for (var start = 0; start + chunk <= commands.Length; start += chunk)
            {
                yield return s with { Commands = [.. commands[..start], .. commands[(start + chunk)..]] };
            }
        }

        for (var i = 0; i < commands.Length; i++)
        {
            AllocatorCommand? shorter = commands[i] switch
            {
                AllocateCommand { Prompt.Length: > 1 } a => a with { Prompt = a.Prompt[..^1] },
                AppendCommand { Tokens.Length: > 1 } a => a with { Tokens = a.Tokens[..^1] },
                CanAllocateCommand { Prompt.Length: > 1 } c => c with { Prompt = c.Prompt[..^1] },
                _ => null,
            };
            if (shorter != null)
            {
                var copy = (AllocatorCommand[])commands.Clone();
                copy[i] = shorter;
                yield return s with { Commands = copy };
            }
        }

        if (s.NumBlocks > 3)
        {
            yield return s with { NumBlocks = s.NumBlocks - 1, Watermark = Math.Min(s.Watermark, s.NumBlocks - 1) };
        }

        if (s.Watermark > 0)
        {
            yield return s with { Watermark = s.Watermark - 1 };
        }
    }
}
