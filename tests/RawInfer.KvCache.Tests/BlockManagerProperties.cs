using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace RawInfer.KvCache.Tests;

/// <summary>
/// Model-based properties: random scripts run against <see cref="BlockManager"/> and <see cref="ReferenceModel"/>;
/// after every command the outcomes and the observable state agree and every invariant holds.
/// </summary>
public class BlockManagerProperties
{
    [Property(MaxTest = 1000)]
    public Property Allocator_agrees_with_the_reference_model_after_every_command() =>
        Prop.ForAll(AllocatorGen.Scenarios(), scenario => new ModelHarness(scenario).Run());

    [Property(MaxTest = 1000)]
    public Property Under_memory_pressure_allocator_agrees_with_the_reference_model() =>
        Prop.ForAll(AllocatorGen.Scenarios(maxBlocks: 5), scenario => new ModelHarness(scenario).Run());

    /// <summary>
    /// With a 2-bit hash nearly every lookup collides; comparing tokens and parent hash must keep every hit honest,
    /// so each sequence still reads back exactly the tokens it was given.
    /// </summary>
    [Property(MaxTest = 1000)]
    public Property Prefix_hits_never_return_a_block_with_other_tokens_even_when_hashes_collide() =>
        Prop.ForAll(AllocatorGen.Scenarios(), scenario =>
        {
            var manager = new BlockManager(scenario.NumBlocks, scenario.BlockSize, scenario.Watermark, hashMask: 0b11);
            var expected = new Dictionary<long, List<int>>();
            foreach (var command in scenario.Commands)
            {
                try
                {
                    switch (command)
                    {
                        case AllocateCommand a:
                            manager.Allocate(a.Id, a.Prompt);
                            expected[a.Id] = [.. a.Prompt];
                            break;
                        case AppendCommand a:
                            manager.Append(a.Id, a.Tokens);
                            expected[a.Id].AddRange(a.Tokens);
                            break;
                        case ForkCommand f:
                            manager.Fork(f.Parent, f.Child);
                            expected[f.Child] = [.. expected[f.Parent]];
                            break;
                        case FreeCommand f:
                            manager.Free(f.Id);
                            expected.Remove(f.Id);
                            break;
                        default:
                            break;
                    }
                }
                catch (KvCacheException)
                {
                    // Misuse and exhaustion are covered by the model properties; here only reads matter.
                }

                manager.CheckInvariants();
                foreach (var (id, tokens) in expected)
                {
                    Assert.Equal(tokens, ModelHarness.ReadBack(manager, id));
                }
            }
        });
}
